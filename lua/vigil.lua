-- vigil.lua — the module rules `require "vigil"`: episodes, frames, logging and parameters.
-- Built on "vigil.core" (C functions registered by core/vg_script.c); pixels and vision through the FFI
-- in vigil/frame.lua and vigil/vision.lua.
-- This module is compiled by the JIT; rules calling it are interpreted (see vigil/host.lua).
local core = require "vigil.core"

local vigil = {}

vigil.params = core.params
vigil.camera = core.camera()
vigil.keep = {}

-- Logging -----------------------------------------------------------------------------------------

local function join(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  return table.concat(parts, " ")
end

function vigil.log(...) core.log("info", join(...)) end
function vigil.warn(...) core.log("warn", join(...)) end
function vigil.debug(...) core.log("debug", join(...)) end

-- Frames: methods live in vigil/frame.lua ---------------------------------------------------------

require "vigil.frame"

-- Vision: zones, background/motion, blobs, tracker, sharpness, histograms (vigil/vision.lua) ------------

for name, fn in pairs(require "vigil.vision") do vigil[name] = fn end

-- Episodes ----------------------------------------------------------------------------------------

vigil.episode = {}

-- Opens an episode at the frame's time. opts: episode_type (string), payload (table).
function vigil.episode.open(frame, opts)
  opts = opts or {}
  return core.open(frame, opts.episode_type, opts.payload)
end

-- The episodes this camera has open, oldest first (also those opened by an earlier version of the rule).
function vigil.episodes()
  return core.episodes()
end

return vigil
