-- vigil.lua — the module rules `require "vigil"`: episodes, frames, logging and parameters.
-- Built on "vigil.core" (C functions registered by core/vg_script.c); pixels and vision through the FFI
-- in vigil/frame.lua and vigil/vision.lua.
-- This module is compiled by the JIT; rules calling it are interpreted (see vigil/host.lua).
local core = require "vigil.core"

local vigil = {}

vigil.params = core.params
-- the camera's zones from the config: name -> list of points {x = .., y = ..} (also [1], [2]: every point vigil
-- hands out reads both ways)
vigil.zones = core.zones
vigil.camera = core.camera()
vigil.keep = {}

-- Logging -----------------------------------------------------------------------------------------

local function join(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  return table.concat(parts, " ")
end

function vigil.log(...) core.log("info", join(...)) end
function vigil.warn(...) core.log("warn", join(...)) end
function vigil.debug(...) core.log("debug", join(...)) end
function vigil.error(...) core.log("error", join(...)) end -- logs at error level; the callback goes on

-- Deprecated spellings warn once per load through vigil.warn (looked up at the call: a test may catch it).
local deprecate = require "vigil.deprecate"
deprecate.warn = function(message) vigil.warn(message) end

-- Parameters: vigil.check_params(rule, {"zone", "threshold", ...}) warns about unknown keys and returns
-- accessors :number, :string, :points, :zone, :moving_objects, :bad that stop the rule with a line naming
-- a bad value.
local params_checker = require "vigil.params"
function vigil.check_params(rule, known) return params_checker(vigil.params, vigil.warn, rule, known, vigil) end

-- Frames: methods live in vigil/frame.lua ---------------------------------------------------------

require "vigil.frame"

-- Vision: zones, background/motion, blobs, tracker, sharpness, histograms (vigil/vision.lua) ------------

for name, fn in pairs(require "vigil.vision") do vigil[name] = fn end

-- Episodes ----------------------------------------------------------------------------------------

-- vigil.episode(time, {episode_type =, payload =}) opens an episode at time (a frame or unix ms; nil: the frame
-- being processed). Its methods extend, close(time [, reason]), time_out(time [, reason]) (a close for inactivity:
-- Central's close_reason "timeout", the reason in payload.close_reason), set_payload, set_episode_type, preview and
-- frame_preview are C (core/vg_script.c); offer_preview and set_detections are below. ep.payload is a live view
-- (vigil/payload.lua); ep.payload = t and ep.episode_type = s are the setters.
local function open_episode(time, opts)
  if opts ~= nil and type(opts) ~= "table" then error("vigil.episode: options {episode_type =, payload =} expected", 3) end
  opts = opts or {}
  return core.open(time, opts.episode_type, opts.payload)
end
vigil.episode = setmetatable({
  open = function(time, opts) -- the older spelling (deprecated)
    deprecate.use("vigil.episode.open(time, opts)", "vigil.episode(time, opts)")
    return open_episode(time, opts)
  end,
}, { __call = function(_, time, opts) return open_episode(time, opts) end })

-- ep:offer_preview(frame, box, score [, opts]): takes a preview only when score beats the episode's
-- current one (e.g. the blob's area, or its sharpness), so a rule can offer every frame and the JPEG is
-- encoded only when it gets better. Returns true when it took it.
local episode_methods = core.episode_methods()
function episode_methods.offer_preview(ep, frame, box, opts, old_opts)
  local score
  if type(opts) == "number" then -- the older spelling (deprecated): offer_preview(frame, box, score [, opts])
    deprecate.use("ep:offer_preview(frame, box, score, opts)", "ep:offer_preview(frame, box, {score = score, ...})")
    score, opts = opts, old_opts
  else
    if type(opts) ~= "table" then error("offer_preview: options {score = number, ...} expected", 2) end
    score = opts.score
  end
  if type(score) ~= "number" or score ~= score then error("offer_preview: score must be a number", 2) end
  if ep.has_preview and score <= ep.preview_score then return false end
  local o = { score = score }
  if opts then for k, v in pairs(opts) do o[k] = v end; o.score = score end
  ep:preview(frame, box, o)
  return true
end

-- ep:set_episode_type(s) is ep.episode_type = s; ep:set_type(s) is its older spelling (deprecated).
episode_methods.set_episode_type = episode_methods.set_type
local set_episode_type = episode_methods.set_type
function episode_methods.set_type(ep, episode_type)
  deprecate.use("ep:set_type(s)", "ep.episode_type = s (or ep:set_episode_type(s))")
  return set_episode_type(ep, episode_type)
end

-- ep:set_detections(list): Central's detected objects. Each item: object_class (required: Watcher reads
-- "human", "vehicle", "face", "license_plate"), box {x, y, w, h} in frame fractions (or x, y, w, h on the item),
-- detected_at (a frame or unix ms; default the frame being processed), confidence (0..1, optional); other keys
-- (a track id) go alongside. Sent as {object_class, detected_at, confidence, appearance = {box = {top, left,
-- bottom, right}}}. A box with no class is no detection Watcher can read: put it in the payload instead.
local frames = require "vigil.frame"
local core_set_detections = episode_methods.set_detections
local DETECTION_KEYS = { object_class = true, box = true, detected_at = true, confidence = true, x = true, y = true,
                         w = true, h = true, label = true }

local function detection_time(at, i)
  if type(at) == "table" and type(at.ts) == "number" then return at.ts end
  if type(at) == "number" and at == at and at >= 0 then return math.floor(at) end
  if at ~= nil then error(("detections[%d].detected_at: a frame or unix ms expected"):format(i), 4) end
  local f = frames.in_progress()
  if not f then error(("detections[%d].detected_at: required outside on_frame"):format(i), 4) end
  return tonumber(f.ts)
end

local function detection_box(d, i)
  local b = d.box or d
  local x, y, w, h = b.x or b[1], b.y or b[2], b.w or b[3], b.h or b[4]
  for k, v in pairs({ x = x, y = y, w = w, h = h }) do
    if type(v) ~= "number" or v ~= v or v < 0 or v > 1 then
      error(("detections[%d].box.%s = %s: a fraction 0..1 expected"):format(i, k, tostring(v)), 4)
    end
  end
  return { top = y, left = x, bottom = math.min(1, y + h), right = math.min(1, x + w) }
end

local function detection(d, i)
  if type(d) ~= "table" then error(("detections[%d]: a table expected"):format(i), 3) end
  local class = d.object_class
  if type(class) ~= "string" or class == "" then
    error(("detections[%d].object_class: missing (Watcher reads human, vehicle, face, license_plate); a box "
           .. "without a class belongs in the payload"):format(i), 3)
  end
  local c = d.confidence
  if c ~= nil and (type(c) ~= "number" or c ~= c or c < 0 or c > 1) then
    error(("detections[%d].confidence = %s: 0..1 expected"):format(i, tostring(c)), 3)
  end
  local out = { object_class = class, detected_at = detection_time(d.detected_at, i), confidence = c,
                appearance = { box = detection_box(d, i) } }
  for k, v in pairs(d) do if not DETECTION_KEYS[k] then out[k] = v end end
  return out
end

function episode_methods.set_detections(ep, list)
  if list == nil then return core_set_detections(ep, nil) end
  if type(list) ~= "table" then error("set_detections: a list of detections expected", 2) end
  local out = {}
  for i, d in ipairs(list) do out[i] = detection(d, i) end
  return core_set_detections(ep, out)
end

-- ep.payload, the live view: every method that changes an episode applies it first (vigil/payload.lua).
local payload_view = require "vigil.payload"
for _, name in ipairs { "extend", "close", "time_out", "set_payload", "set_episode_type", "set_detections", "preview",
                        "frame_preview" } do
  payload_view.wrap(name)
end
set_episode_type = episode_methods.set_episode_type

-- A box {x, y, w, h} grown by `by` (a fraction of its own size) on every side, clamped to the frame. Named fields
-- first, as everywhere (docs/lua-api.md, "Conventions").
function vigil.pad(box, by)
  if not box then return nil end
  local x, y, w, h = box.x or box[1], box.y or box[2], box.w or box[3], box.h or box[4]
  by = by or 0.1
  local x0, y0 = math.max(0, x - w * by), math.max(0, y - h * by)
  local x1, y1 = math.min(1, x + w * (1 + by)), math.min(1, y + h * (1 + by))
  return { x = x0, y = y0, w = x1 - x0, h = y1 - y0 }
end

-- The episodes this camera has open, oldest first (also those opened by an earlier version of the rule).
function vigil.episodes()
  return core.episodes()
end

return vigil
