-- vigil/host.lua — loads a user's rule into its sandbox. Called by the C host (core/vg_script.c), never
-- by rules. Owns: the sandbox environment, the sandboxed require and load, and turning the JIT off for
-- user code so the host's time budget can always stop it (see docs/lua-api.md, "Time budget").
local host = {}

local vigil = require "vigil"

local SAFE_GLOBALS = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber", "tostring", "type",
  "unpack", "xpcall", "rawequal", "rawget", "rawset", "setmetatable", "getmetatable", "collectgarbage",
}
local SAFE_LIBS = { "string", "table", "math", "bit", "coroutine" }
local SAFE_OS = { "time", "clock", "date", "difftime" }

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function no_jit(fn, opts)
  if not opts.jit then jit.off(fn, true) end
  return fn
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- Text-only chunks, run in env, interpreted unless opts.jit.
local function sandboxed_load(env, opts)
  return function(chunk, name, mode, chunk_env)
    if mode ~= nil and mode ~= "t" then error("load: only text chunks are allowed", 2) end
    local fn, err = load(chunk, name, "t", chunk_env or env)
    if not fn then return nil, err end
    return no_jit(fn, opts)
  end
end

local function readable(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

-- require for rules: "vigil" is the module; anything else is a .lua file beside the script. An unsafe
-- rule (fallback = the real require) also reaches installed modules, after the files beside it.
local function rule_require(env, dir, opts, fallback)
  local loaded = { vigil = vigil }
  return function(name)
    if loaded[name] ~= nil then return loaded[name] end
    local good = type(name) == "string" and name:match("^[%w_][%w_%.%-]*$")
    local path = good and dir .. "/" .. name:gsub("%.", "/") .. ".lua"
    if fallback and not (path and readable(path)) then return fallback(name) end
    if not good then error("require: bad module name " .. tostring(name), 2) end
    local fn, err = loadfile(path, "t", env)
    if not fn then error("require '" .. name .. "': " .. err, 2) end
    local result = no_jit(fn, opts)(name)
    loaded[name] = result == nil and true or result
    return loaded[name]
  end
end

-- xpcall's message handler runs where the error was raised; when the budget raised it, that is inside the
-- budget hook, where no hook fires: a handler that loops there could never be cut. A rule's xpcall runs its
-- handler after the error has unwound, where the budget still applies.
local function budgeted_xpcall(f, handler, ...)
  local result = { pcall(f, ...) }
  if result[1] then return unpack(result, 1, table.maxn(result)) end
  return false, handler(result[2])
end

local function make_env(dir, opts)
  if opts.unsafe then
    local env = setmetatable({ vigil = vigil }, { __index = _G })
    env.print = function(...) vigil.log(...) end
    env.require = rule_require(env, dir, opts, require)
    return env
  end
  local env = {}
  for _, name in ipairs(SAFE_GLOBALS) do env[name] = _G[name] end
  for _, name in ipairs(SAFE_LIBS) do env[name] = copy(_G[name]) end
  env.string.dump = nil
  env.xpcall = budgeted_xpcall
  env.os = {}
  for _, name in ipairs(SAFE_OS) do env.os[name] = os[name] end
  env._G = env
  env.vigil = vigil
  env.print = function(...) vigil.log(...) end
  env.load = sandboxed_load(env, opts)
  env.loadstring = env.load
  env.require = rule_require(env, dir, opts)
  return env
end

-- Compiles and runs the rule's main chunk; returns its environment (where its callbacks live).
function host.load(path, opts)
  opts = opts or {}
  if opts.keep then vigil.keep = opts.keep end -- a reload: the state the previous version kept
  local env = make_env(dirname(path), opts)
  local fn, err = loadfile(path, "t", env)
  if not fn then error(err, 0) end
  no_jit(fn, opts)()
  return env
end

-- Strings share one metatable; keep rules from reaching the real string library through it: methods come from
-- a copy without dump (("").dump would otherwise hand a rule string.dump).
do
  local mt, methods = getmetatable(""), copy(string)
  methods.dump = nil
  mt.__index = methods
  mt.__metatable = false
end

return host
