-- test_sandbox.lua — what a rule can reach, run inside the real host by `vigil check` (tests/CMakeLists.txt):
-- no cdata anywhere in the vigil objects a rule holds (a pointer would let it read host memory: a mask pointer
-- once led to the Central key), no string.dump through the string metatable, and a frame table's fields, which
-- a rule may overwrite, never steer a read outside the picture. Every attack here once worked (issue 17).
local vigil = require "vigil"

-- Every value reachable from v (tables, their metatables' __index tables), depth-first.
local function reaches_cdata(v, seen, path)
  seen = seen or {}
  if type(v) == "cdata" or type(v) == "userdata" then return path or "value" end
  if type(v) ~= "table" or seen[v] then return nil end
  seen[v] = true
  for k, x in pairs(v) do
    local found = reaches_cdata(x, seen, (path or "") .. "." .. tostring(k))
    if found then return found end
  end
  local mt = getmetatable(v)
  if type(mt) == "table" then return reaches_cdata(mt, seen, (path or "") .. "<mt>") end
  return nil
end

assert(("").dump == nil, "string.dump is reachable through a string's methods")
assert(string.dump == nil, "string.dump is in the sandbox")

local zone = vigil.zone({ { 0.1, 0.1 }, { 0.9, 0.1 }, { 0.9, 0.9 } }, { name = "z" })
local bg = vigil.background {}
local tracker = vigil.tracker {}
assert(zone.mask == nil, "zone:mask hands out a cdata mask")
for name, object in pairs({ zone = zone, background = bg, tracker = tracker, vigil = vigil }) do
  local found = reaches_cdata(object)
  assert(not found, name .. " reaches cdata at " .. tostring(found))
end

local frames, blobs_seen = 0, 0
function on_frame(frame)
  frames = frames + 1
  bg:update(frame)
  local blobs = bg:blobs {}
  blobs_seen = blobs_seen + #blobs
  local tracks = tracker:update(blobs)
  for name, object in pairs({ frame = frame, blobs = blobs, tracks = tracks, stats = bg:stats(),
                              measure = bg:measure{ zone = zone }, background = bg, tracker = tracker }) do
    local found = reaches_cdata(object)
    assert(not found, name .. " reaches cdata at " .. tostring(found))
  end
  -- a rule may write a frame's fields; reads stay inside the host's picture
  local width = frame.width
  frame.width, frame.height = 2 ^ 31, 2 ^ 31
  local ok, err = pcall(frame.pixel, frame, 2 ^ 30, 2 ^ 30)
  assert(not ok and tostring(err):find("outside the", 1, true), "a pixel outside the picture was read")
  assert(frame:pixel(width - 1, 0) >= 0)
  local mean = frame:mean({ 0, 0, 1, 1 })
  assert(mean >= 0 and mean <= 255)
end

function on_stop()
  assert(frames == 3, "on_frame ran " .. frames .. " times")
  print("test_sandbox: all assertions passed")
end
