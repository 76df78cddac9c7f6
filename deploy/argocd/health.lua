-- Argo CD health check for rollguard.io/CanaryRollout.
-- Install it in argocd-cm under the key `resource.customizations.health.rollguard.io_CanaryRollout`
-- (see docs/chart.md). Argo CD runs it with the live object as `obj` and expects
-- {status = Healthy|Progressing|Degraded|Suspended|Missing|Unknown, message = "..."}.
--
-- Mapping of the CanaryRollout phases:
--   Pending, Initializing, Progressing, Promoting  -> Progressing (the canary is under way)
--   Paused                                         -> Suspended   (waits for `resume` / the pause)
--   Succeeded                                      -> Healthy     (the change is on the stable target)
--   Blocked                                        -> Degraded    (a precondition fails: sign-off, target, Prometheus)
--   RollingBack, RolledBack, Failed                -> Degraded    (the change is NOT live; Git and cluster differ)
-- A spec change the operator has not observed yet is Progressing, whatever the old phase said.
local hs = { status = "Progressing", message = "Waiting for the rollguard operator to pick up the rollout" }

local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local phase = status.phase
local detail = status.message or status.reason or ""

local function describe(prefix)
  if detail ~= "" then
    return prefix .. ": " .. detail
  end
  return prefix
end

if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = describe("Promoted")
elseif phase == "Paused" then
  hs.status = "Suspended"
  hs.message = describe("Paused")
elseif phase == "Pending" or phase == "Initializing" or phase == "Promoting" then
  hs.status = "Progressing"
  hs.message = describe(phase)
elseif phase == "Progressing" then
  hs.status = "Progressing"
  local step = ""
  if status.currentStep ~= nil then
    step = " step " .. tostring(status.currentStep)
  end
  local weight = ""
  if status.canaryWeight ~= nil then
    weight = ", canary weight " .. tostring(status.canaryWeight) .. "%"
  end
  hs.message = describe("Progressing" .. step .. weight)
elseif phase == "Blocked" then
  hs.status = "Degraded"
  hs.message = describe("Blocked")
elseif phase == "RollingBack" then
  hs.status = "Degraded"
  hs.message = describe("Rolling back")
elseif phase == "RolledBack" then
  hs.status = "Degraded"
  hs.message = describe("Rolled back")
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = describe("Failed (rollback incomplete, the operator keeps retrying)")
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
