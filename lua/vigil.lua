-- vigil.lua — the module rules `require "vigil"`: episodes, frames, logging and parameters.
-- Built on "vigil.core" (C functions registered by core/vg_script.c) and the FFI for pixel access.
-- This module is compiled by the JIT; rules calling it are interpreted (see vigil/host.lua).
local ffi = require "ffi"
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

-- Frames ------------------------------------------------------------------------------------------

ffi.cdef [[
typedef struct vg_frame {
    int64_t ts;
    int64_t index;
    int32_t width, height;
    int32_t stride;
    const uint8_t *luma;
    int32_t full_width, full_height;
    int32_t clock;
    int32_t keyframe;
    const void *full;
} vg_frame;
]]

local frame_ptr_t = ffi.typeof("const vg_frame *")
local frame_methods = {}
local frame_mt = {}

local function check_current(frame)
  if frame._generation ~= core.frame_generation() then
    error("frame " .. tostring(frame.index) .. " is gone: use a frame only inside the on_frame call that got it", 3)
  end
end

-- The luma plane as a cdata pointer (row pitch frame.stride), valid during this on_frame call.
function frame_methods.luma_ptr(frame)
  check_current(frame)
  return ffi.cast(frame_ptr_t, frame._frame).luma
end

-- Luma at analysis pixel (x, y), 0-based.
function frame_methods.pixel(frame, x, y)
  if x < 0 or y < 0 or x >= frame.width or y >= frame.height then
    error(("pixel (%s, %s) outside the %dx%d frame"):format(tostring(x), tostring(y), frame.width, frame.height), 2)
  end
  local luma = frame:luma_ptr()
  return luma[math.floor(y) * frame.stride + math.floor(x)]
end

-- Mean luma over a box in frame fractions {x, y, w, h} (whole frame when omitted).
function frame_methods.mean(frame, box)
  local luma = frame:luma_ptr()
  local x0, y0, x1, y1 = 0, 0, frame.width, frame.height
  if box then
    x0 = math.floor(box[1] * frame.width); y0 = math.floor(box[2] * frame.height)
    x1 = math.floor((box[1] + box[3]) * frame.width); y1 = math.floor((box[2] + box[4]) * frame.height)
  end
  if x1 <= x0 or y1 <= y0 then error("mean: empty box", 2) end
  local sum, stride = 0, frame.stride
  for y = y0, y1 - 1 do
    local row = y * stride
    for x = x0, x1 - 1 do sum = sum + luma[row + x] end
  end
  return sum / ((x1 - x0) * (y1 - y0))
end

frame_mt.__index = frame_methods
frame_mt.__metatable = false
core.frame_metatable(frame_mt)

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
