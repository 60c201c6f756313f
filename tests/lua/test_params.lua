-- test_params.lua — vigil.check_params, run inside the real host by `vigil check` (tests/CMakeLists.txt):
-- defaults, ranges, integers, choices, point lists, the one-line message naming the parameter and this
-- file's line, and the warning for unknown keys. Any failed assertion stops the rule: `check` exits 1.
local vigil = require "vigil"

local fails = require("expect").fails

local function with(values)
  for k in pairs(vigil.params) do vigil.params[k] = nil end
  for k, v in pairs(values) do vigil.params[k] = v end
  return vigil.check_params("test", { "n", "i", "s", "zone", "line", "name", "min_area", "max_distance", "learning_rate" })
end

-- defaults and valid values
local p = with {}
assert(p:number("n", 7, 0, 10) == 7 and p:string("s", "x") == "x")
p = with { n = 2.5, i = 3, s = "b" }
assert(p:number("n", 7, 0, 10) == 2.5 and p:number("i", 1, 0, 10, true) == 3)
assert(p:string("s", "a", { "a", "b" }) == "b")

-- numbers: type, range, integer
fails(function() with({ n = "5" }):number("n", 1, 0, 10) end, 'params.n = "5": a number 0..10 expected')
fails(function() with({ n = 11 }):number("n", 1, 0, 10) end, "params.n = 11: a number 0..10 expected")
fails(function() with({ i = 1.5 }):number("i", 1, 0, 10, true) end, "params.i = 1.5: an integer 0..10 expected")
fails(function() with({ n = 0 / 0 }):number("n", 1, 0, 10) end, "a number 0..10 expected")

-- strings and choices
fails(function() with({ s = "" }):string("s", "a") end, 'params.s = "": a non-empty string expected')
fails(function() with({ s = "c" }):string("s", "a", { "a", "b" }) end, "one of a, b expected")

-- points: required, count, range, both notations
local err = fails(function() with({}):points("zone", 3, nil, "a polygon") end, "params.zone = nil: required")
assert(err:find("test_params.lua:%d+:"), "the message names the rule's file and line: " .. err)
fails(function() with({ zone = { { 0, 0 }, { 1, 1 } } }):points("zone", 3, nil, "a polygon") end,
      "at least 3 points {x, y} in frame fractions 0..1 expected, got 2")
fails(function() with({ zone = { { 0, 0 }, { 1, 1 }, { 0, 1.5 } } }):points("zone", 3, nil, "a polygon") end,
      "point 3 is {0, 1.5}")
fails(function() with({ line = { { 0, 0 }, { 1, 1 }, { 0, 1 } } }):points("line", 2, 2, "a line") end,
      "a line: 2 points")
local pts = with({ zone = { { x = 0.1, y = 0.2 }, { 0.5, 0.2 }, { 0.3, 0.9 } } }):points("zone", 3, nil, "a polygon")
assert(#pts == 3 and pts[1][1] == 0.1 and pts[1][2] == 0.2 and pts[3][2] == 0.9)

-- every accessor blames the rule's line, not the module's
for _, fn in ipairs {
  function() with({ n = 11 }):number("n", 1, 0, 10) end,
  function() with({ s = 1 }):string("s", "a") end,
  function() with({ zone = 3 }):zone("zone", "name") end,
  function() with({ min_area = 2 }):moving_objects() end,
} do
  local where = fails(fn, "params.")
  assert(where:find("^[^:]*test_params.lua:%d+: params%."), "blames this file: " .. where)
end

-- zone: a vigil.zone named by another parameter ("zone" by default); a polygon vigil.zone refuses
local square = { { 0.2, 0.2 }, { 0.8, 0.2 }, { 0.8, 0.8 }, { 0.2, 0.8 } }
local z = with({ zone = square }):zone("zone", "name")
assert(z.name == "zone" and z:contains(0.5, 0.5) and not z:contains(0.1, 0.1))
assert(with({ zone = square, name = "door" }):zone("zone", "name").name == "door")
fails(function() with({ zone = square, name = "" }):zone("zone", "name") end, 'params.name = "": a non-empty string')
fails(function() with({ zone = { { 0, 0 }, { 1, 0 }, { 1, 0 } } }):zone("zone", "name") end,
      "params.zone = {{0, 0}, {1, 0}, {1, 0}}: zone zone: polygon covers no pixel")
fails(function() with({}):zone("zone", "name") end, "params.zone = nil: required")

-- moving_objects: background + blobs + tracker from checked params
local movers = with({ max_distance = 0.25 }):moving_objects { learning_rate = 0.01 }
assert(movers.max_distance == 0.25 and type(movers.update) == "function")
fails(function() with({ learning_rate = 1.5 }):moving_objects() end, "params.learning_rate = 1.5: a number 0..1")
fails(function() with({ max_distance = -1 }):moving_objects() end, "params.max_distance = -1: a number 0..2")

-- bad: the caller's own checks, same format
fails(function() with({}):bad("line", { 1, 2 }, "too short") end, "params.line = {1, 2}: too short")

-- a long value is cut at 120 characters
local long = {}
for i = 1, 100 do long[i] = i end
err = fails(function() with({ zone = long }):points("zone", 3, 3, "a triangle") end, "...")
assert(#err < 300, "long values are cut: " .. #err)

vigil.log("test_params: all assertions passed")
function on_frame(frame) assert(type(movers:update(frame)) == "table", "movers:update gives the tracks") end
