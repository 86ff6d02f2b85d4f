"""Static vocabularies the dataset generator draws from: models, SKUs, states, sites."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hardware:
    """One orderable device model as both GreenLake and Central name it."""

    glp_type: str  # GreenLake deviceType
    central_type: str | None  # New Central deviceType; None: Central does not manage it
    model: str
    part_number: str
    weight: int  # relative frequency in a workspace


HARDWARE: tuple[Hardware, ...] = (
    Hardware("AP", "ACCESS_POINT", "AP-515", "Q9H62A", 30),
    Hardware("AP", "ACCESS_POINT", "AP-535", "JZ336A", 12),
    Hardware("AP", "ACCESS_POINT", "AP-635", "R7J27A", 18),
    Hardware("AP", "ACCESS_POINT", "AP-655", "S0T85A", 6),
    Hardware("AP", "ACCESS_POINT", "AP-505H", "R3V46A", 5),
    Hardware("SWITCH", "SWITCH", "6300M 48G CL4 PoE 4SFP56 Switch", "JL661A", 9),
    Hardware("SWITCH", "SWITCH", "6200F 24G CL4 PoE 4SFP+ Switch", "JL724A", 7),
    Hardware("SWITCH", "SWITCH", "CX 6100 24G CL4 4SFP+ Switch", "JL678A", 4),
    Hardware("SWITCH", "SWITCH", "8360-32Y4C Switch", "JL700A", 1),
    Hardware("GATEWAY", "GATEWAY", "9004 Gateway", "R1B24A", 3),
    Hardware("GATEWAY", "GATEWAY", "7210 Mobility Controller", "JW744A", 1),
    # Devices GreenLake holds but Central never manages: the join on serialNumber misses them.
    Hardware("COMPUTE", None, "ProLiant DL360 Gen11", "P52499-B21", 2),
    Hardware("STORAGE", None, "Alletra 6010", "R7B45A", 1),
    Hardware("SENSOR", None, "UXI U6000 Sensor", "Q9Z90A", 1),
)

#: GreenLake assignedState: an open-ended enum. The rare values are what a naive CHECK
#: constraint rejects; "PENDING_TRANSFER" stands for a value introduced after the client shipped.
ASSIGNED_STATES_LINKED: tuple[tuple[str, int], ...] = (
    ("ASSIGNED_TO_SERVICE", 980),
    ("ASSIGNED_TO_ACTIVATE_CONFIG", 15),
    ("PENDING_TRANSFER", 5),
)
ASSIGNED_STATES_UNLINKED: tuple[tuple[str, int], ...] = (
    ("UNASSIGNED", 700),
    ("ASSIGNED_TO_SERVICE", 280),
    ("ASSIGNED_TO_ACTIVATE_CONFIG", 15),
    ("PENDING_TRANSFER", 5),
)

#: The documented value a `seed`-profile dataset serves instead of an undocumented one.
DOCUMENTED_STAND_IN: dict[str, str] = {"PENDING_TRANSFER": "ASSIGNED_TO_SERVICE"}

REGIONS: tuple[str, ...] = ("us-west", "us-east", "eu-central", "ap-northeast")

#: Service managers a device can be assigned to: (id, name).
APPLICATIONS: tuple[tuple[str, str], ...] = (
    ("683da368-66cb-4ee7-90a9-ec1964768092", "Aruba Central"),
    ("0b9ff6d8-2c5e-4e59-8c54-73f1a4c0b6a2", "Compute Ops Management"),
    ("7d1a4b9e-5f3c-4b2a-9e8d-1c6f0a2b3d4e", "Data Services"),
)


@dataclass(frozen=True)
class Plan:
    """A subscription product: what a subscription of that type is sold as."""

    subscription_type: str
    sku: str
    sku_description: str
    tier: str
    tier_description: str
    product_type: str
    serves: tuple[str, ...]  # GreenLake deviceTypes it licenses


PLANS: tuple[Plan, ...] = (
    Plan(
        "CENTRAL_AP",
        "Q9Y59AAE",
        "Aruba Central AP Foundation Subscription 5 Year E-STU",
        "FOUNDATION_AP",
        "Foundation AP",
        "DEVICE",
        ("AP",),
    ),
    Plan(
        "CENTRAL_AP",
        "Q9Y67AAE",
        "Aruba Central AP Advanced Subscription 3 Year E-STU",
        "ADVANCED_AP",
        "Advanced AP",
        "DEVICE",
        ("AP",),
    ),
    Plan(
        "CENTRAL_SWITCH",
        "R3K00AAE",
        "Aruba Central 6300 Switch Foundation Subscription 5 Year E-STU",
        "FOUNDATION_SWITCH_6300",
        "Foundation Switch 6300",
        "DEVICE",
        ("SWITCH",),
    ),
    Plan(
        "CENTRAL_SWITCH",
        "R3J99AAE",
        "Aruba Central 6200 Switch Advanced Subscription 3 Year E-STU",
        "ADVANCED_SWITCH_6200",
        "Advanced Switch 6200",
        "DEVICE",
        ("SWITCH",),
    ),
    Plan(
        "CENTRAL_GW",
        "R4G76AAE",
        "Aruba Central 90xx Gateway Foundation Subscription 5 Year E-STU",
        "FOUNDATION_90XX_GW",
        "Foundation 90xx Gateway",
        "DEVICE",
        ("GATEWAY",),
    ),
    Plan(
        "CENTRAL_COMPUTE",
        "R7A11AAE",
        "HPE Compute Ops Management Enhanced 3 Year E-STU",
        "ENHANCED_PROLIANT",
        "Enhanced ProLiant",
        "DEVICE",
        ("COMPUTE",),
    ),
    Plan(
        "CENTRAL_STORAGE",
        "S1N52AAE",
        "HPE GreenLake for Block Storage Subscription 1 Year E-STU",
        "STANDARD_STORAGE",
        "Standard Storage",
        "DEVICE",
        ("STORAGE", "SENSOR"),
    ),
)

#: subscriptionStatus with weights; only STARTED subscriptions receive new device links.
SUBSCRIPTION_STATUSES: tuple[tuple[str, int], ...] = (
    ("STARTED", 80),
    ("ENDED", 8),
    ("SUSPENDED", 4),
    ("CANCELLED", 3),
    ("LOCKED", 3),
    ("NONE", 2),
)

SITES: tuple[str, ...] = (
    "HQ-Building-A",
    "HQ-Building-B",
    "Warehouse-North",
    "Branch-Austin",
    "Branch-Denver",
    "Branch-Lyon",
    "Branch-Osaka",
    "DC-East",
    "DC-West",
    "Campus-Library",
    "Campus-Dorm-3",
    "Retail-0142",
)

DEVICE_GROUPS: dict[str, tuple[str, ...]] = {
    "ACCESS_POINT": ("Campus-APs", "Branch-APs", "default"),
    "SWITCH": ("Access-Switches", "Core-Switches", "default"),
    "GATEWAY": ("Branch-Gateways", "VPNC", "default"),
}

#: (role, persona) per New Central deviceType.
ROLES: dict[str, tuple[tuple[str, str], ...]] = {
    "ACCESS_POINT": (("AP", "CAMPUS_AP"), ("AP", "REMOTE_AP"), ("MESH_POINT", "MESH_AP")),
    "SWITCH": (("ACCESS", "ACCESS_SWITCH"), ("AGGREGATION", "AGG_SWITCH"), ("CORE", "CORE_SWITCH")),
    "GATEWAY": (("BRANCH", "BRANCH_GW"), ("VPNC", "VPN_CONCENTRATOR"), ("MOBILITY", "MOBILITY_GW")),
}

SOFTWARE: dict[str, tuple[str, ...]] = {
    "ACCESS_POINT": ("10.5.1.1_89236", "10.6.0.2_90581", "10.7.0.0_91012"),
    "SWITCH": ("FL.10.13.1010", "FL.10.14.0030", "LL.10.12.1040"),
    "GATEWAY": ("10.5.1.0_88765", "10.6.0.1_90320"),
}

#: configStatus of a monitored device: "Synchronized" is the vendor's example; the others are ours.
CONFIG_STATUSES: tuple[tuple[str, int], ...] = (
    ("Synchronized", 90),
    ("Not Synchronized", 7),
    ("Failed", 3),
)

#: deviceFunction per persona: pycentral's SUPPORTED_CONFIG_PERSONAS, read backwards.
DEVICE_FUNCTIONS: dict[str, str] = {
    "CAMPUS_AP": "Campus Access Point",
    "REMOTE_AP": "Micro Branch AP",
    "ACCESS_SWITCH": "Access Switch",
    "AGG_SWITCH": "Aggregation Switch",
    "CORE_SWITCH": "Core Switch",
    "BRANCH_GW": "Branch Gateway",
    "VPN_CONCENTRATOR": "VPN Concentrator",
    "MOBILITY_GW": "Mobility Gateway",
}

#: Central license tier per deviceType (the vendor's example shows ADVANCED_SWITCH_6300).
TIERS: dict[str, tuple[str, ...]] = {
    "ACCESS_POINT": ("ADVANCED_AP", "FOUNDATION_AP"),
    "SWITCH": ("ADVANCED_SWITCH_6300", "FOUNDATION_SWITCH_6200"),
    "GATEWAY": ("ADVANCED_90XX_GW", "FOUNDATION_90XX_GW"),
}
