-- vigil/params.lua — checking a rule's parameters. `vigil.check_params(rule, known)` warns once about every
-- key the rule does not know (a typo must not fall back to a default silently) and returns accessors that
-- apply defaults and ranges; a bad value stops the rule at load with one line naming it:
--   zone_intrusion.lua:104: params.zone = {{0, 0}, {1, 1}}: a polygon: at least 3 points {x, y} in frame
--   fractions 0..1 expected, got 2
local checker = {}
checker.__index = checker

-- A value as text for an error message, in Lua table notation, cut at 120 characters.
local function show(v, depth)
  depth = depth or 0
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) ~= "table" then return tostring(v) end
  if depth > 3 then return "{...}" end
  local parts, n = {}, #v
  for i = 1, n do parts[#parts + 1] = show(v[i], depth + 1) end
  for k, x in pairs(v) do
    if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then
      parts[#parts + 1] = tostring(k) .. " = " .. show(x, depth + 1)
    end
  end
  local s = "{" .. table.concat(parts, ", ") .. "}"
  return #s > 120 and s:sub(1, 117) .. "..." or s
end

-- level 2 blames the caller of the checker's method: the rule's line that asked for the parameter.
local function fail(name, value, expected, level)
  error(("params.%s = %s: %s"):format(name, show(value), expected), level + 1)
end

-- Stops the rule: params.NAME = VALUE: EXPECTED (for checks the accessors cannot make).
function checker:bad(name, value, expected) fail(name, value, expected, 2) end

-- A number in lo..hi (an integer when integer is true), or default when absent. Called straight from a
-- checker method (never as a tail call), so level 3 blames the rule's line that called that method.
local function number(self, name, default, lo, hi, integer)
  local v = self.params[name]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v < lo or v > hi or (integer and v % 1 ~= 0) then
    fail(name, v, ("%s %s..%s expected"):format(integer and "an integer" or "a number", lo, hi), 3)
  end
  return v
end

function checker:number(name, default, lo, hi, integer)
  local v = number(self, name, default, lo, hi, integer)
  return v
end

-- A non-empty string (one of choices when given), or default when absent.
function checker:string(name, default, choices)
  local v = self.params[name]
  if v == nil then return default end
  if type(v) ~= "string" or v == "" then fail(name, v, "a non-empty string expected", 2) end
  if choices then
    for _, c in ipairs(choices) do if v == c then return v end end
    fail(name, v, "one of " .. table.concat(choices, ", ") .. " expected", 2)
  end
  return v
end

-- A required list of at least min (at most max) points {x, y} (or {x = .., y = ..}) in frame fractions;
-- returned as {{x =, y =}, ...} (each also [1], [2], as every point vigil hands out). what names the shape in the message ("a polygon", "a line"). Called like number.
local function points(self, name, min, max, what)
  local v = self.params[name]
  local expected = ("%s: %s%s points {x, y} in frame fractions 0..1 expected"):format(
    what, max == min and "" or "at least ", min)
  if v == nil then fail(name, v, "required, " .. expected, 3) end
  if type(v) ~= "table" or #v < min or (max and #v > max) then
    fail(name, v, expected .. (type(v) == "table" and (", got %d"):format(#v) or ""), 3)
  end
  local out = {}
  for i, pt in ipairs(v) do
    local x, y = type(pt) == "table" and (pt.x or pt[1]), type(pt) == "table" and (pt.y or pt[2])
    if type(x) ~= "number" or type(y) ~= "number" or x ~= x or y ~= y or x < 0 or x > 1 or y < 0 or y > 1 then
      fail(name, v, ("point %d is %s: %s"):format(i, show(pt), expected), 3)
    end
    out[i] = { x, y, x = x, y = y }
  end
  return out
end

function checker:points(name, min, max, what)
  local v = points(self, name, min, max, what)
  return v
end

-- A required polygon (params[points_key]) named params[name_key] (default "zone"), as a vigil.zone.
function checker:zone(points_key, name_key)
  local name = self.params[name_key] == nil and "zone" or self.params[name_key]
  if type(name) ~= "string" or name == "" then fail(name_key, name, "a non-empty string expected", 2) end
  local ok, zone = pcall(self.vigil.zone, points(self, points_key, 3, nil, "a polygon"), { name = name })
  if not ok then fail(points_key, self.params[points_key], tostring(zone), 2) end
  return zone
end

-- The moving objects the tracking rules follow: background subtraction, blobs of at least min_area, and a
-- tracker, set from the params min_area, threshold, noise_factor, learning_rate, absorb_seconds,
-- max_distance and max_missed (absent ones take the background's and tracker's own defaults; `defaults`
-- may give a rule's own). An object that has moved (its track travelled HOLD_TRAVEL of the frame width)
-- and then stops is held: the background does not absorb it while its track lives, so it stays tracked
-- until it moves away. objects:update(frame) returns the live tracks (see vigil.tracker); objects.tracks
-- are the last ones, objects.background and objects.tracker the parts.
local HOLD_TRAVEL = 0.03
function checker:moving_objects(defaults)
  defaults = defaults or {}
  local min_area = number(self, "min_area", 0.002, 0, 1)
  local vigil = self.vigil
  local background = vigil.background {
    threshold = number(self, "threshold", defaults.threshold, 1, 255),
    noise_factor = number(self, "noise_factor", defaults.noise_factor, 0, 50),
    learning_rate = number(self, "learning_rate", defaults.learning_rate, 0, 1),
    absorb_seconds = number(self, "absorb_seconds", defaults.absorb_seconds, 0, 86400) }
  local tracker = vigil.tracker { max_distance = number(self, "max_distance", defaults.max_distance, 0, 2),
                                  max_missed = number(self, "max_missed", defaults.max_missed, 0, 100000, true) }
  return {
    max_distance = tracker.max_distance,
    background = background,
    tracker = tracker,
    tracks = {},
    update = function(objects, frame)
      local tracks = tracker:update(background:update(frame):blobs { min_area = min_area, max = 32 })
      local hold = {}
      for _, t in ipairs(tracks) do
        if t.travelled >= HOLD_TRAVEL and t.seen >= 3 then hold[#hold + 1] = vigil.pad(t, 0.1) end
      end
      background:hold(hold)
      objects.tracks = tracks
      return tracks
    end,
  }
end

-- params: the table to check; rule: the rule's name for warnings; known: a list of the keys it reads;
-- vigil: the module (zones, background, tracker).
return function(params, warn, rule, known, vigil)
  local set = {}
  for _, k in ipairs(known) do set[k] = true end
  for k in pairs(params) do
    if not set[k] then warn(("%s: unknown parameter params.%s is ignored"):format(rule, tostring(k))) end
  end
  return setmetatable({ params = params, vigil = vigil }, checker)
end
