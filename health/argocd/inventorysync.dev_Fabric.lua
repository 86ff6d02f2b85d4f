-- Argo CD health check for inventorysync.dev/Fabric.
-- One logic for SyncSchedule and Fabric (tests/unit/test_argocd_health.py), in order:
--   spec.suspend true                                   -> Suspended
--   no status, observedGeneration < generation,
--   or Reconciling=True                                 -> Progressing
--   Ready=False with reason Waiting (a stall was fixed) -> Progressing
--   Stalled=True or Ready=False                         -> Degraded
--   Ready=True                                          -> Healthy
--   anything else (no Ready condition, Ready=Unknown)   -> Progressing
local hs = {}

local function find(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function say(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended (spec.suspend is true): no scheduled runs"
  return hs
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to record a status"
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local reconciling = find(status.conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = say(reconciling, "Run in progress")
  return hs
end

local stalled = find(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = say(stalled, "Stalled")
  return hs
end

local ready = find(status.conditions, "Ready")
if ready ~= nil and ready.status == "False" and ready.reason == "Waiting" then
  hs.status = "Progressing"
  hs.message = say(ready, "Waiting for the next run")
  return hs
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = say(ready, "Not ready")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = say(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = say(ready, "Waiting for the Ready condition")
return hs
