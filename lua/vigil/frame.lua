-- vigil/frame.lua — frame tables: their methods, and the luma pointer lua/ reads pixels through.
-- A frame table carries no pointer; the pixels of the frame being processed come from the host, and a
-- table kept past its on_frame call is refused, so rules can never read freed memory.
local ffi = require "ffi"
local core = require "vigil.core"

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
    void *scaler;
    void *overlay;
} vg_frame;
]]

local frame_ptr_t = ffi.typeof("const vg_frame *")
local floor = math.floor

local M = {}
local methods = {}
local mt = { __index = methods, __metatable = false }

-- The vg_frame of the on_frame call in progress, checked to be the one `frame` describes.
function M.current(frame, level)
  if type(frame) ~= "table" or frame._generation ~= core.frame_generation() then
    error("not the current frame: use a frame only inside the on_frame call that got it", (level or 2) + 1)
  end
  return ffi.cast(frame_ptr_t, core.current_frame())
end

-- The vg_frame of the on_frame call in progress, or nil outside one, for lua/'s own drawing: it reads no
-- pixel, so it never makes the analysis plane (a rule that only tests zones pays no scaling for it).
function M.in_progress()
  local p = core.current_frame(true)
  return p and ffi.cast(frame_ptr_t, p) or nil
end

-- Luma (0..255) at analysis pixel (x, y), 0-based: the one call in pixels (docs/lua-api.md, "Conventions");
-- frame:luma(x, y) is the same in frame fractions.
-- Bounds come from the host's frame, never from the table (a rule may write its fields).
function methods.pixel(frame, x, y)
  local f = M.current(frame)
  local width, height = tonumber(f.width), tonumber(f.height)
  if type(x) ~= "number" or type(y) ~= "number" or not (x >= 0 and y >= 0 and x < width and y < height) then
    error(("pixel (%s, %s) outside the %dx%d frame"):format(tostring(x), tostring(y), width, height), 2)
  end
  return f.luma[floor(y) * f.stride + floor(x)]
end

-- Luma (0..255) at the point (x, y) in frame fractions (0..1; 1 is the last pixel).
function methods.luma(frame, x, y)
  local f = M.current(frame)
  local width, height = tonumber(f.width), tonumber(f.height)
  if type(x) ~= "number" or type(y) ~= "number" or not (x >= 0 and y >= 0 and x <= 1 and y <= 1) then
    error(("luma (%s, %s): a point in frame fractions 0..1 expected"):format(tostring(x), tostring(y)), 2)
  end
  return f.luma[math.min(height - 1, floor(y * height)) * f.stride + math.min(width - 1, floor(x * width))]
end

-- Pixel rectangle [x0, x1) x [y0, y1) of a box {x, y, w, h} in frame fractions, clamped to the frame.
function M.box_pixels(frame, box, level)
  local f = M.current(frame, (level or 2) + 1)
  local width, height = tonumber(f.width), tonumber(f.height) -- the host's, not the table's
  if box == nil then return 0, 0, width, height end
  local x, y, w, h = box.x or box[1], box.y or box[2], box.w or box[3], box.h or box[4]
  for i, v in ipairs({ x, y, w, h }) do
    if type(v) ~= "number" or v ~= v then
      error(("box value %d is %s, a number 0..1 expected"):format(i, tostring(v)), (level or 2) + 1)
    end
  end
  local x0 = math.max(0, floor(x * width + 0.5))
  local y0 = math.max(0, floor(y * height + 0.5))
  local x1 = math.min(width, floor((x + w) * width + 0.5))
  local y1 = math.min(height, floor((y + h) * height + 0.5))
  return x0, y0, x1, y1
end

-- Mean luma over a box in frame fractions {x, y, w, h} (the whole frame when omitted).
function methods.mean(frame, box)
  local x0, y0, x1, y1 = M.box_pixels(frame, box, 2)
  if x1 <= x0 or y1 <= y0 then error("mean: the box covers no pixel", 2) end
  local f = M.current(frame)
  local luma, stride, sum = f.luma, f.stride, 0
  for y = y0, y1 - 1 do
    local row = y * stride
    for x = x0, x1 - 1 do sum = sum + luma[row + x] end
  end
  return sum / ((x1 - x0) * (y1 - y0))
end

M.metatable = mt
M.methods = methods
core.frame_metatable(mt)

return M
