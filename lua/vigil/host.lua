-- vigil/host.lua — loads a user's rule into its sandbox. Called by the C host (core/vg_script.c), never
-- by rules. Owns: the sandbox environment, the sandboxed require and load, and turning the JIT off for
-- user code so the host's time budget can always stop it (see docs/lua-api.md, "Time budget").
local host = {}
host.files = {} -- every module file a rule required (path -> true): a change of one reloads the rule

local vigil = require "vigil"
local core = require "vigil.core"
local payload_view = require "vigil.payload"

-- The callbacks vigil calls; another on_* function is a misspelling, and the load says so.
local CALLBACKS = { "on_frame", "on_start", "on_stop", "on_stream", "on_reload" }
local IS_CALLBACK = {}
for _, name in ipairs(CALLBACKS) do IS_CALLBACK[name] = true end

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

-- A rule's file, compiled in env: read by the host (a regular file only, size-capped: a FIFO there would
-- block in a C call no budget can cut), text chunks only.
local function load_rule_file(path, env)
  local text, err = core.read_file(path)
  if not text then return nil, err end
  return load(text, "@" .. path, "t", env)
end

-- require for rules: "vigil" is the module; anything else is a .lua file beside the script. An unsafe
-- rule (fallback = the real require) also reaches installed modules, after the files beside it.
local function rule_require(env, dir, opts, fallback)
  local loaded = { vigil = vigil }
  return function(name)
    if loaded[name] ~= nil then return loaded[name] end
    local good = type(name) == "string" and name:match("^[%w_][%w_%.%-]*$")
    local path = good and dir .. "/" .. name:gsub("%.", "/") .. ".lua"
    local text, err
    if path then text, err = core.read_file(path) end -- read once: the unsafe fallback wants to know it is there
    if fallback and not text then return fallback(name) end
    if not good then error("require: bad module name " .. tostring(name), 2) end
    host.files[path] = true
    local fn
    if text then fn, err = load(text, "@" .. path, "t", env) end
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

-- Long C calls. No hook fires inside a C function, so a C call could outlast the budget: each string function
-- that can take long checks the budget when it returns, and a pattern whose worst case (backtracking repeats
-- on a long subject) is over PATTERN_STEPS is refused before it starts; a long sort compares in Lua, where the
-- hook fires. What a call can allocate is held by the rule's memory cap (core/vg_script.c).
local PATTERN_STEPS = 1e8
local byte, sub, raw_match = string.byte, string.sub, string.match

-- The end of the single-character class that starts at i (a %-escape, a [set] or one character).
local function class_end(pattern, i)
  local c = byte(pattern, i)
  if c == 37 then return byte(pattern, i + 1) == 98 and i + 3 or i + 1 end -- %x, %bxy
  if c ~= 91 then return i end
  i = i + 1
  if byte(pattern, i) == 94 then i = i + 1 end
  repeat -- a ] right after [ or [^ is part of the set
    if byte(pattern, i) == 37 then i = i + 1 end
    i = i + 1
  until i > #pattern or byte(pattern, i) == 93
  return i
end

-- Repeats (*, +, -, ?) after which the pattern goes on: each may backtrack over the whole subject.
local function repeats(pattern)
  local count, i, n = 0, 1, #pattern
  while i <= n do
    i = class_end(pattern, i) + 1
    local q = byte(pattern, i)
    if q == 42 or q == 43 or q == 45 or q == 63 then
      i = i + 1
      if not raw_match(sub(pattern, i), "^%)*$") then count = count + 1 end
    end
  end
  return count
end

-- repeats() of the patterns a rule uses over and over (a constant pattern in on_frame): short ones only, and at
-- most CACHED of them, so the cache stays small whatever the rule makes.
local CACHED, CACHED_LEN = 256, 256
local repeats_of, cached = {}, 0
local function repeats_cached(pattern)
  local q = repeats_of[pattern]
  if q then return q end
  q = repeats(pattern)
  if #pattern <= CACHED_LEN then
    if cached >= CACHED then repeats_of, cached = {}, 0 end
    repeats_of[pattern], cached = q, cached + 1
  end
  return q
end

local function check_pattern(name, subject, pattern, plain, anchorable)
  if plain or type(subject) ~= "string" or type(pattern) ~= "string" then return end
  local q = repeats_cached(pattern)
  if q == 0 then return end
  local n = #subject
  local steps = n ^ ((anchorable and byte(pattern, 1) == 94) and q or q + 1)
  if steps > PATTERN_STEPS then
    error(("%s: a pattern with %d repeats that may backtrack, on %d bytes, may take %.0e steps; a call may take %.0e"
      .. " (shorten the subject or the pattern)"):format(name, q, n, steps, PATTERN_STEPS), 3)
  end
end

local budget_check = core.budget_check
local function checked(...)
  budget_check()
  return ...
end

local function less(a, b) return a < b end
jit.off(less)

local function guard_string(lib)
  local find, match, gmatch, gsub, rep = lib.find, lib.match, lib.gmatch, lib.gsub, lib.rep
  lib.find = function(s, p, init, plain)
    check_pattern("string.find", s, p, plain, true)
    return checked(find(s, p, init, plain))
  end
  lib.match = function(s, p, init)
    check_pattern("string.match", s, p, false, true)
    return checked(match(s, p, init))
  end
  lib.gmatch = function(s, p)
    check_pattern("string.gmatch", s, p, false, false)
    local next_match = gmatch(s, p)
    return function() return checked(next_match()) end
  end
  lib.gsub = function(s, p, repl, n)
    check_pattern("string.gsub", s, p, false, true)
    return checked(gsub(s, p, repl, n))
  end
  lib.rep = function(s, n, sep) return checked(rep(s, n, sep)) end
  return lib
end

local function guard_table(lib)
  local sort = lib.sort
  lib.sort = function(t, comp)
    if comp == nil and type(t) == "table" and #t > 1000 then comp = less end
    sort(t, comp)
    budget_check()
  end
  return lib
end

-- collectgarbage without the options that would let a rule stop or retune the collector.
local GC_OPTIONS = { count = true, collect = true, step = true }
local function rule_collectgarbage(option, arg)
  if option ~= nil and not GC_OPTIONS[option] then
    error("collectgarbage: '" .. tostring(option) .. "' is not for rules (count, collect and step are)", 2)
  end
  return collectgarbage(option, arg)
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
  guard_string(env.string)
  guard_table(env.table)
  env.collectgarbage = rule_collectgarbage
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

local function warn_unknown_callbacks(env)
  local names = {}
  for k, v in pairs(env) do
    if type(k) == "string" and raw_match(k, "^on_") and not IS_CALLBACK[k] and type(v) == "function" then
      names[#names + 1] = k
    end
  end
  table.sort(names)
  for _, k in ipairs(names) do
    local info = debug.getinfo(env[k], "S")
    local where = info and sub(info.source, 1, 1) == "@" and info.linedefined > 0
      and (raw_match(info.source, "([^/]*)$") .. ":" .. info.linedefined .. ": ") or ""
    vigil.warn(("%s%s is not a callback vigil calls (%s) — misspelled?"):format(where, k, table.concat(CALLBACKS, ", ")))
  end
end

-- What the C host calls: env's callbacks, each applying the ep.payload views it made when it returns (inside its
-- transaction: a failure there fails the callback). Looked up at every call, as a rule may replace a callback.
local function callbacks_of(env)
  local wrapped = {}
  return setmetatable({}, { __index = function(_, name)
    local fn = rawget(env, name) -- the rule's own global: never a metatable's __index, which runs unbudgeted here
    if type(fn) ~= "function" then return fn end
    local w = wrapped[name]
    if not w or w.fn ~= fn then
      w = { fn = fn, call = function(...)
        payload_view.begin()
        fn(...)
        payload_view.finish()
      end }
      wrapped[name] = w
    end
    return w.call
  end, __metatable = false })
end

-- Compiles and runs the rule's main chunk; returns the table the host calls its callbacks from.
function host.load(path, opts)
  opts = opts or {}
  if opts.keep then vigil.keep = opts.keep end -- a reload: the state the previous version kept
  local env = make_env(dirname(path), opts)
  local fn, err = load_rule_file(path, env)
  if not fn then error(err, 0) end
  payload_view.begin()
  no_jit(fn, opts)()
  payload_view.finish()
  warn_unknown_callbacks(env)
  return callbacks_of(env)
end

-- Strings share one metatable; keep rules from reaching the real string library through it: methods come from
-- a copy without dump (("").dump would otherwise hand a rule string.dump).
do
  local mt, methods = getmetatable(""), guard_string(copy(string))
  methods.dump = nil
  mt.__index = methods
  mt.__metatable = false
end

return host
