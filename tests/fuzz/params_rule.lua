-- params_rule.lua — the rule fuzz_params.c loads with the fuzzer's input as vigil.params: each accessor of
-- vigil.check_params reads it (under pcall, so one bad value does not hide the others) and the whole table is
-- walked, so whatever the JSON became in Lua is looked at.
local vigil = require "vigil"

local p = vigil.check_params("fuzz", { "n", "i", "s", "kind", "line", "zone", "name" })
pcall(p.number, p, "n", 0.5, 0, 1)
pcall(p.number, p, "i", 3, 1, 100, true)
pcall(p.string, p, "s", "x")
pcall(p.string, p, "kind", "a", { "a", "b" })
pcall(p.points, p, "line", 2, 2, "a line")
pcall(p.zone, p, "zone", "name")

local function walk(v)
  if type(v) ~= "table" then return #tostring(v) end
  local n = #v
  for k, x in pairs(v) do n = n + #tostring(k) + walk(x) end
  return n
end
walk(vigil.params)

function on_frame(frame) end
