-- zone_intrusion.lua — an episode while any object is inside a zone. Objects are moving blobs (background
-- subtraction) followed by a tracker; an object is inside when its reference point — the bottom-centre of
-- its box, where a person stands, or its centre — has been inside the polygon for min_frames frames in a
-- row. The episode opens at the first of those frames, follows every object that comes in while it is
-- open, and closes quiet_ms after the last one left; closed_at is the last frame an object was seen inside.
-- The preview is the objects inside, at the frame with the most of them (then the biggest).
--
-- Closes: quiet_ms after the last object left -> close_reason "timeout" (payload.close_reason "clear"); when
-- the camera stops, at the last frame an object was seen inside with the host's reason (shutdown,
-- end_of_stream, ...: docs/lua-api.md, "Why an episode closed").
--
-- params:
--   zone          required: polygon in frame fractions, {{x, y}, {x, y}, {x, y}, ...} (at least 3 points)
--   name          the zone's name in the payload (default "zone")
--   point         "bottom" (bottom-centre of the object's box; default) or "center" (centre of the box)
--   min_frames    consecutive frames the point must be inside before the object counts (default 3)
--   quiet_ms      the episode closes this long after the last object left (default 1000)
--   min_area      smallest object, a fraction of the frame's area (default 0.002)
--   threshold     least luma difference from the background that counts as moving (default: the
--                 background's, 12; each pixel's own threshold also follows its noise, noise_factor 4)
--   absorb_seconds  what stands still this long, never having moved, becomes background (default 8);
--                 an object that moved and stopped stays tracked until it moves away
--   learning_rate how fast the background follows slow change, per frame, 0..1 (default 0.02)
--   max_distance  how far an object may move between two frames, a fraction of the frame width (default 0.1)
--   max_missed    frames an object may go undetected before it is gone (default 12)
--   episode_type  (default "zone_intrusion")
--
-- payload: { zone = name, objects = objects inside now, max_objects = most inside at once,
--            tracks = ids of the objects that were inside (first 32), track_count = how many }
--   object_class  what the objects are, for Watcher: "human", "vehicle", "face" or "license_plate". With it
--                 the boxes of the objects inside are the episode's detections (Central's schema, with their
--                 track id); without it they go in payload.boxes (a detection Watcher cannot read is none)
--
-- Limits: an object that stops moving stays tracked until it moves away; two objects that meet are one
-- blob while they touch (the tracker keeps both ids through it). On a hot reload the open episode
-- is kept (vigil.keep), but the background and the tracker start over.
local vigil = require "vigil"

local RULE = "zone_intrusion"

-- Parameters ---------------------------------------------------------------------------------------------

local params = vigil.check_params(RULE, { "zone", "name", "point", "min_frames", "quiet_ms", "min_area",
                                          "threshold", "noise_factor", "learning_rate", "absorb_seconds",
                                          "max_distance", "max_missed",
                                          "episode_type", "object_class" })

local zone = params:zone("zone", "name")
local point = params:string("point", "bottom", { "bottom", "center" })
local min_frames = params:number("min_frames", 3, 1, 1000, true)
local quiet_ms = params:number("quiet_ms", 1000, 0, 3600000)
local episode_type = params:string("episode_type", "zone_intrusion")
local object_class = params:string("object_class", nil)
local movers = params:moving_objects()

-- State ----------------------------------------------------------------------------------------------------
-- What a reload must carry lives in vigil.keep (plain values only): the open episode's id, its counts, the
-- last time an object was seen inside, and the highest track id shown so far (the new tracker counts from 1
-- again, so its ids are shifted past the old ones).

local keep = vigil.keep
keep.tracks = keep.tracks or {}
keep.max_objects = keep.max_objects or 0
keep.track_count = keep.track_count or 0
keep.id_base = keep.id_base or 0
keep.last_id = keep.last_id or keep.id_base

local episode          -- the open episode, or nil
local objects = {}     -- tracker id -> { streak, since, inside, box }
local MAX_LISTED = 32

local function reference_point(t)
  if point == "center" then return t.x + t.w / 2, t.y + t.h / 2 end
  return t.x + t.w / 2, t.y + t.h
end

local function union(a, b)
  if not a then return { x = b.x, y = b.y, w = b.w, h = b.h } end
  local x0, y0 = math.min(a.x, b.x), math.min(a.y, b.y)
  local x1, y1 = math.max(a.x + a.w, b.x + b.w), math.max(a.y + a.h, b.y + b.h)
  return { x = x0, y = y0, w = x1 - x0, h = y1 - y0 }
end

local function payload(inside, boxes)
  return { zone = zone.name, objects = inside, max_objects = keep.max_objects, tracks = keep.tracks,
           track_count = keep.track_count, boxes = not object_class and boxes or nil }
end

local function note_track(id)
  for _, known in ipairs(keep.tracks) do if known == id then return false end end
  keep.track_count = keep.track_count + 1
  if #keep.tracks < MAX_LISTED then keep.tracks[#keep.tracks + 1] = id end
  return true
end

-- Closes the episode at the last frame an object was inside: for inactivity ("clear"), or (no reason) at a
-- stop, for the host to say why.
local function close(reason)
  if episode then
    episode:set_payload(payload(0))
    if reason then episode:time_out(keep.last_inside, reason) else episode:close(keep.last_inside) end
  end
  episode = nil
  keep.episode, keep.tracks, keep.max_objects, keep.track_count = nil, {}, 0, 0
end

function on_frame(frame)
  local tracks = movers:update(frame)

  -- which objects are inside
  local alive, inside, seen_inside, first_since = {}, 0, false, nil
  local box, area, detections, ids = nil, 0, {}, {}
  for _, t in ipairs(tracks) do
    alive[t.id] = true
    local o = objects[t.id]
    if not o then o = { streak = 0 }; objects[t.id] = o end
    if t.missed == 0 then
      if zone:contains(reference_point(t)) then
        o.streak = o.streak + 1
        if o.streak == 1 then o.since = frame.ts end
        o.inside = o.inside or o.streak >= min_frames
      else
        o.streak, o.inside = 0, false
      end
    end
    if o.inside then -- an object unseen for a few frames is still inside until the tracker drops it
      inside = inside + 1
      local id = keep.id_base + t.id
      if id > keep.last_id then keep.last_id = id end
      ids[#ids + 1] = id
      if t.missed == 0 then
        seen_inside = true
        box = union(box, t)
        area = math.max(area, t.w * t.h)
        detections[#detections + 1] = { x = t.x, y = t.y, w = t.w, h = t.h, track = id, object_class = object_class }
      end
      if not first_since or o.since < first_since then first_since = o.since end
    end
  end
  for id in pairs(objects) do if not alive[id] then objects[id] = nil end end
  if seen_inside then keep.last_inside = frame.ts end

  if inside > 0 then
    local changed = false
    for _, id in ipairs(ids) do changed = note_track(id) or changed end
    if inside > keep.max_objects then keep.max_objects, changed = inside, true end
    if not episode then
      episode = vigil.episode(first_since, { episode_type = episode_type, payload = payload(inside, detections) })
      keep.episode = episode.id
      changed = false
    elseif changed or inside ~= keep.objects or (not object_class and seen_inside) then
      episode:set_payload(payload(inside, detections))
    end
    keep.objects = inside
    if seen_inside then
      episode:extend(frame)
      if object_class then episode:set_detections(detections) end
      -- the best preview shows the most objects at once, then the biggest
      episode:offer_preview(frame, vigil.pad(box, 0.25), { score = inside + math.min(area, 0.99) })
    end
  elseif episode then
    keep.objects = 0
    if frame.ts - keep.last_inside >= quiet_ms then close("clear") end
  end
end

-- A hot reload: take over the episode the previous version left open (the tracker starts over, so track
-- ids continue past the highest one shown).
function on_reload(kept)
  keep = kept
  keep.id_base = keep.last_id or 0
  for _, ep in ipairs(vigil.episodes()) do
    if ep.id == kept.episode then episode = ep end
  end
  if not episode then close() end
end

function on_stop()
  if episode then close() end
end
