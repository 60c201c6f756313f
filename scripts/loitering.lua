-- loitering.lua — an object that stays in a zone longer than a limit. Objects are moving blobs (background
-- subtraction) followed by a tracker; an object is in the zone while its reference point (the bottom-centre
-- of its box, where a person stands, or its centre) is inside the polygon. Once it has been in for `seconds`,
-- an episode opens with opened_at = the frame it entered; it is extended while the object stays, and closed
-- at the last frame the object was seen inside when it leaves or its track is lost (it vanished; one that stops
-- stays tracked, see vigil.check_params' moving_objects): close_reason "timeout", payload.close_reason "left" or
-- "lost". When the camera stops, at the same time with the host's reason (shutdown, end_of_stream, ...:
-- docs/lua-api.md, "Why an episode closed"). An object passing through quicker makes no episode. One episode
-- per object. The preview is the object, biggest seen.
--
-- params:
--   zone          required: polygon in frame fractions, {{x, y}, {x, y}, {x, y}, ...} (at least 3 points)
--   seconds       how long an object must stay before it is loitering (default 10)
--   name          the zone's name in the payload (default "zone")
--   point         "bottom" (bottom-centre of the object's box; default) or "center" (centre of the box)
--   min_frames    frames in a row the point must be outside for the object to have left (default 3)
--   min_area      smallest object, a fraction of the frame's area (default 0.002)
--   threshold     least luma difference from the background that counts as moving (default: the
--                 background's, 12; each pixel's own threshold also follows its noise, noise_factor 4)
--   absorb_seconds  what stands still this long, never having moved, becomes background (default 8);
--                 an object that moved and stopped stays tracked until it moves away
--   learning_rate how fast the background follows slow change, per frame, 0..1 (default 0.01)
--   max_distance  how far an object may move between two frames, a fraction of the frame width (default 0.1)
--   max_missed    frames an object may go undetected before its track is lost (default 12)
--   episode_type  (default "loitering")
--
-- payload: { zone = name, track = id, dwell_ms = time from entering to the last frame seen inside }
--   object_class  what the objects are, for Watcher ("human", "vehicle", ...): with it the object's box is the
--                 episode's detection (Central's schema, with its track id); without it, payload.box
--
-- Hot reload: open episodes are kept (vigil.keep); the new tracker starts over, so each is handed to the new
-- tracks seen inside the zone near where its object was last seen within 2 s (the object, and the ghost of
-- where it stood: the new background model learns the first frame), or closed as "lost" if none comes.
local vigil = require "vigil"

local RULE = "loitering"
local RELINK_MS = 2000

-- Parameters ---------------------------------------------------------------------------------------------

local params = vigil.check_params(RULE, { "zone", "seconds", "name", "point", "min_frames", "min_area",
                                          "threshold", "noise_factor", "learning_rate", "absorb_seconds",
                                          "max_distance", "max_missed",
                                          "episode_type", "object_class" })

local zone = params:zone("zone", "name")
local limit_ms = params:number("seconds", 10, 0, 86400) * 1000
local point = params:string("point", "bottom", { "bottom", "center" })
local min_frames = params:number("min_frames", 3, 1, 1000, true)
local episode_type = params:string("episode_type", "loitering")
local object_class = params:string("object_class", nil)
local movers = params:moving_objects { learning_rate = 0.01 } -- slower: a loiterer stands still
local max_distance = movers.max_distance

-- State ----------------------------------------------------------------------------------------------------
-- vigil.keep holds what a reload needs: each open episode by id with its track id, when the object entered,
-- when and where it was last seen inside; and the highest track id shown (a new tracker counts from 1 again,
-- so its ids are shifted past the old ones).

local keep = vigil.keep
keep.open = keep.open or {} -- episode id -> { track, entered, last_inside, x, y }
keep.id_base = keep.id_base or 0
keep.last_id = keep.last_id or keep.id_base

-- tracker id -> { id (shown), entered, last_inside, outside (frames in a row), episode, x, y }
local objects = {}
local orphans = {} -- after a reload: { episode, kept, since } waiting for a new track

local function reference_point(t)
  if point == "center" then return t.x + t.w / 2, t.y + t.h / 2 end
  return t.x + t.w / 2, t.y + t.h
end

local function payload(o)
  return { zone = zone.name, track = o.id, dwell_ms = o.last_inside - o.entered,
           box = not object_class and o.box or nil }
end

-- Whether another track follows o's episode too (after a reload, see adopt).
local function shared(o)
  for _, other in pairs(objects) do
    if other ~= o and other.episode == o.episode then return true end
  end
  return false
end

-- Closes o's episode at the last frame it was inside: for inactivity ("left", "lost"), or (no reason) at a
-- stop, for the host to say why.
local function close(o, reason)
  if not o.episode then return end
  if shared(o) then o.episode = nil; return end -- another track of the same object carries it on
  o.episode:set_payload(payload(o))
  if reason then o.episode:time_out(o.last_inside, reason) else o.episode:close(o.last_inside) end
  keep.open[o.episode.id] = nil
  o.episode = nil
end

local function remember(o)
  keep.open[o.episode.id] = { track = o.id, entered = o.entered, last_inside = o.last_inside, x = o.x, y = o.y }
end

-- A new track inside the zone takes over the nearest episode left open by the previous version. One object
-- may come back as two tracks: itself, and for a while the ghost of where it stood in the first frame the new
-- background learned. So every new track near it within RELINK_MS follows that episode (shared: the last of
-- them to leave or be lost closes it), instead of the second one opening a duplicate.
local function adopt(o, t)
  local best, best_d
  for _, orphan in ipairs(orphans) do
    local d = math.sqrt((orphan.kept.x - t.cx) ^ 2 + (orphan.kept.y - t.cy) ^ 2)
    if d <= 3 * max_distance and orphan.episode.is_open and (not best_d or d < best_d) then best, best_d = orphan, d end
  end
  if not best then return end
  best.adopted = true
  o.episode, o.id, o.entered = best.episode, best.kept.track, best.kept.entered
end

function on_frame(frame)
  local tracks = movers:update(frame)
  local alive = {}
  for _, t in ipairs(tracks) do
    alive[t.id] = true
    local o = objects[t.id]
    if not o then
      o = { id = keep.id_base + t.id, outside = 0 }
      if o.id > keep.last_id then keep.last_id = o.id end
      objects[t.id] = o
    end
    if t.missed == 0 then
      if zone:contains(reference_point(t)) then
        if not o.entered then
          o.entered = frame.ts
          if #orphans > 0 then adopt(o, t) end
        end
        o.last_inside, o.outside, o.x, o.y = frame.ts, 0, t.cx, t.cy
        o.box = { x = t.x, y = t.y, w = t.w, h = t.h }
        if not o.episode and o.last_inside - o.entered >= limit_ms then
          o.episode = vigil.episode(o.entered, { episode_type = episode_type, payload = payload(o) })
        elseif o.episode then
          o.episode:set_payload(payload(o))
        end
        if o.episode then
          o.episode:extend(frame)
          if object_class then
            o.episode:set_detections({ { box = o.box, object_class = object_class, track = o.id } })
          end
          o.episode:offer_preview(frame, vigil.pad(t, 0.3), { score = t.w * t.h })
          remember(o)
        end
      elseif o.entered then
        o.outside = o.outside + 1
        if o.outside >= min_frames then
          close(o, "left")
          o.entered = nil
        end
      end
    end
  end
  for id, o in pairs(objects) do
    if not alive[id] then
      close(o, "lost")
      objects[id] = nil
    end
  end
  for i = #orphans, 1, -1 do
    local orphan = orphans[i]
    if frame.ts - orphan.since >= RELINK_MS then
      if not orphan.adopted then
        orphan.episode:time_out(orphan.kept.last_inside, "lost")
        keep.open[orphan.episode.id] = nil
      end
      table.remove(orphans, i)
    end
  end
end

-- A hot reload: the episodes the previous version left open wait for a new track to take them over.
function on_reload(kept)
  keep = kept
  keep.open = keep.open or {}
  keep.id_base = keep.last_id or 0
  keep.last_id = keep.id_base
  local still = {}
  for _, ep in ipairs(vigil.episodes()) do
    local k = keep.open[ep.id]
    if k then
      orphans[#orphans + 1] = { episode = ep, kept = k, since = k.last_inside }
      still[ep.id] = true
    end
  end
  for id in pairs(keep.open) do if not still[id] then keep.open[id] = nil end end
end

function on_stop()
  for _, o in pairs(objects) do close(o) end
  for _, orphan in ipairs(orphans) do
    if not orphan.adopted then orphan.episode:close(orphan.kept.last_inside) end
  end
  orphans = {}
end
