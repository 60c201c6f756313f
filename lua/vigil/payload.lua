-- vigil/payload.lua — ep.payload as a live view. Reading ep.payload gives a plain Lua table (pairs, #, nested
-- tables all work), the same one for the rest of the callback; what the rule changes in it, at any depth, is
-- applied as ep:set_payload(that table) would be: before any other method of the episode runs, and when the
-- callback returns, inside the callback's transaction (a failed callback applies none of it). The JSON limits of
-- set_payload hold (core/vg_script.c checks the table). What the host adds to a payload (payload.close_reason,
-- preview_offset_ms) is added when a version is rendered, never to the payload itself: only set_payload changes
-- what the view shows, and the view follows it in place, so the rule's reference stays the live one.
local core = require "vigil.core"

local M = {}
local views = {} -- episode handle -> { table = the rule's view, snapshot = what the host has }
local methods = core.episode_methods()
local raw_set_payload = methods.set_payload

local function equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(b) do if not equal(a[k], v) then return false end end -- b is the snapshot: a tree
  for k in pairs(a) do if b[k] == nil then return false end end
  return true
end

function M.view(ep)
  local v = views[ep]
  if v then return v.table end
  local t = core.payload(ep)
  if t == nil then return nil end
  views[ep] = { table = t, snapshot = core.payload(ep) }
  return t
end

-- Applies the view's changes (an error, e.g. over the JSON limits or after close, stops the caller).
local function flush(ep)
  local v = views[ep]
  if v and not equal(v.table, v.snapshot) then
    raw_set_payload(ep, v.table)
    v.snapshot = core.payload(ep)
  end
end

-- After set_payload: the view follows the new payload, in place (top-level keys).
local function follow(ep)
  local v = views[ep]
  if not v then return end
  local fresh = core.payload(ep)
  if type(fresh) ~= "table" then views[ep] = nil; return end
  local t = v.table
  for k in pairs(t) do if fresh[k] == nil then t[k] = nil end end
  for k, x in pairs(fresh) do if not equal(t[k], x) then t[k] = x end end
  v.snapshot = core.payload(ep)
end

local find = string.find -- the library's own: a string's methods are the rules' budget-checked ones

-- What a method returned, or its error raised again at the rule's line (level 3: the wrapper's caller), as it
-- would be without the wrapper: a C method's error (raised through pcall) carries no position of its own.
local function returned(ok, ...)
  if ok then return ... end
  local err = ...
  if type(err) == "string" and not find(err, "^[^\n]-:%d+: ") then error(err, 3) end
  error(err, 0)
end

-- Every method that changes an episode applies the view first; set_payload replaces it, and the view follows.
-- Without a view (the rule has not read ep.payload in this callback) the method is a tail call: nothing to do.
function M.wrap(name)
  local fn = methods[name]
  if name == "set_payload" then
    methods[name] = function(ep, ...)
      if not views[ep] then return fn(ep, ...) end
      local r = returned(pcall(fn, ep, ...))
      follow(ep)
      return r
    end
    return
  end
  methods[name] = function(ep, ...)
    if not views[ep] then return fn(ep, ...) end
    flush(ep)
    return fn(ep, ...) -- a tail call: its error names the rule's line
  end
end

-- Callbacks (lua/vigil/host.lua): a callback starts with no views, and applies them when it returns. Nothing is
-- allocated for a callback that read no ep.payload.
function M.begin()
  if next(views) ~= nil then views = {} end
end
function M.finish()
  if next(views) == nil then return end
  for ep in pairs(views) do
    local ok, err = pcall(flush, ep)
    if not ok then
      views = {}
      error(("ep.payload of episode %s: %s"):format(ep.id, tostring(err)), 0)
    end
  end
  views = {}
end

core.payload_view(M.view)
return M
