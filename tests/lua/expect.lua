-- expect.lua — what the Lua tests share (required from beside them, as a rule requires its helpers):
-- fails(fn, needle) asserts that fn raises an error whose text contains needle, and returns that text.
local expect = {}

function expect.fails(fn, needle)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error containing " .. needle)
  assert(tostring(err):find(needle, 1, true), ("error %q lacks %q"):format(tostring(err), needle))
  return tostring(err)
end

return expect
