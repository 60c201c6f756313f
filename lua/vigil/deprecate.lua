-- vigil/deprecate.lua — old spellings of the API keep working for a release, each with ONE warning per rule load
-- naming the rule's file:line (docs/lua-api.md, "Conventions"). The warning goes through vigil.warn (set by
-- lua/vigil.lua), the rule's own log path.
local M = {}
M.warned = {}
-- The string library's own functions: a string's methods are the rules' guarded ones (lua/vigil/host.lua), which
-- check the budget; a warning must not be what raises a spent budget.
local match, sub = string.match, string.sub
M.warn = function(message) io.stderr:write(message, "\n") end -- replaced by lua/vigil.lua

-- The lua/ directory: frames from files under it are the module's, not the rule's.
local MODULE_DIR = match(debug.getinfo(1, "S").source, "^@(.*)/vigil/[^/]*$")

-- file:line of the innermost caller outside the module (the rule's line), or nil.
function M.rule_line()
  for level = 3, 30 do
    local info = debug.getinfo(level, "Sl")
    if not info then return nil end
    local src = info.source
    if info.what ~= "C" and sub(src, 1, 1) == "@" and info.currentline > 0
      and not (MODULE_DIR and sub(src, 2, #MODULE_DIR + 1) == MODULE_DIR) then
      return match(src, "([^/]*)$") .. ":" .. info.currentline
    end
  end
  return nil
end

-- deprecate.use("vigil.sharpness(frame)", "frame:sharpness()"): warns the first time in this rule's load.
function M.use(old, new)
  if M.warned[old] then return end
  M.warned[old] = true
  local where = M.rule_line()
  M.warn(("%sdeprecated: %s — use %s"):format(where and (where .. ": ") or "", old, new))
end

return M
