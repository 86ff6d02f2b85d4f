"""One run of a SyncSchedule: credentials, then sources in dependency order, each streamed into the store."""
