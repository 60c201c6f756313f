-- motion.lua — an episode while something moves in a zone; closed after a quiet period. The background
-- model (vigil.background) compares away noise, light and exposure changes, forgets what stands still for
-- absorb_seconds, and lets a ghost (what an object that left uncovers) vanish. The preview is the moving
-- objects (the blobs of the frame where the most of the zone moved), not the box of every changed pixel
-- (that only when no blob is big enough, the whole frame when not even that).
--
-- Closes: quiet_ms without motion -> close_reason "timeout" (payload.close_reason "quiet"), closed_at the last
-- frame with motion; when the camera stops, at the last frame with motion with the host's reason (shutdown,
-- end_of_stream, ...: docs/lua-api.md, "Why an episode closed").
--
-- params (all optional):
--   zone           polygon in frame fractions, {{x, y}, ...}; default: the whole frame
--   threshold      least luma difference that counts as change (default: the background's, 12); each
--                  pixel's own threshold also follows its measured noise (noise_factor, default 4)
--   learning_rate  how fast the background follows slow change, per frame, 0..1 (default: the background's)
--   absorb_seconds what stands still this long stops counting as motion (default 30)
--   min_changed    fraction of the zone that must change to count as motion (default 0.002)
--   min_frames     consecutive motion frames before an episode opens (default 2)
--   quiet_ms       no motion for this long closes the episode (default 2000)
--   episode_type   (default "motion")
local vigil = require "vigil"

local params = vigil.check_params("motion", { "zone", "threshold", "noise_factor", "learning_rate",
                                              "absorb_seconds", "min_changed", "min_frames", "quiet_ms",
                                              "episode_type" })
local zone = vigil.params.zone and vigil.zone(params:points("zone", 3, nil, "a polygon"), { name = "motion" }) or nil
local background = vigil.background { threshold = params:number("threshold", nil, 1, 255),
                                      noise_factor = params:number("noise_factor", nil, 0, 50),
                                      learning_rate = params:number("learning_rate", nil, 0, 1),
                                      absorb_seconds = params:number("absorb_seconds", 30, 0, 86400) }
local min_changed = params:number("min_changed", 0.002, 0, 1)
local min_frames = params:number("min_frames", 2, 1, 1000, true)
local quiet_ms = params:number("quiet_ms", 2000, 0, 3600000)
local episode_type = params:string("episode_type", "motion")

local streak = 0      -- consecutive frames with motion
local streak_start    -- ts of the first frame of the streak
local last_motion = 0 -- ts of the last frame with motion
local episode, peak
local keep = vigil.keep -- across a hot reload: the open episode's id, its peak, the last motion

-- The moving objects: the union of the blobs at least a quarter the size of the largest (stray changed
-- pixels elsewhere do not stretch it); nil when there is none.
local function objects_box()
  local blobs = background:blobs { zone = zone, min_area = 0.0005, max = 8 }
  local box
  for _, b in ipairs(blobs) do
    if b.pixels * 4 >= blobs[1].pixels then
      if not box then box = { x = b.x, y = b.y, w = b.w, h = b.h }
      else
        local x0, y0 = math.min(box.x, b.x), math.min(box.y, b.y)
        local x1, y1 = math.max(box.x + box.w, b.x + b.w), math.max(box.y + box.h, b.y + b.h)
        box = { x = x0, y = y0, w = x1 - x0, h = y1 - y0 }
      end
    end
  end
  return box
end

-- Offers this frame's moving objects as the preview (encoded only when it beats the current one): every
-- episode gets one.
local function offer(frame, m)
  local box = objects_box()
  episode:offer_preview(frame, vigil.pad(box or m.box, 0.15), { score = m.changed })
  return box
end

function on_frame(frame)
  local m = background:update(frame):measure { zone = zone }
  local moving = m.changed >= min_changed
  streak = moving and streak + 1 or 0
  if streak == 1 then streak_start = frame.ts end
  if moving then last_motion = frame.ts end
  keep.last_motion, keep.last_ts = last_motion, frame.ts

  if not episode then
    if streak >= min_frames then
      peak = m.changed
      keep.peak = peak
      episode = vigil.episode(streak_start, { episode_type = episode_type, payload = { changed = peak } })
      episode:extend(frame) -- it lasts up to this frame, the one its preview shows
      keep.episode = episode.id
      local box = offer(frame, m)
      episode:set_payload { changed = peak, box = box }
    end
  elseif moving then
    if m.changed > peak then
      peak = m.changed
      keep.peak = peak
      episode:set_payload { changed = peak, box = offer(frame, m) }
    end
    episode:extend(frame)
  elseif frame.ts - last_motion >= quiet_ms then
    episode:time_out(last_motion, "quiet")
    episode, keep.episode = nil, nil
  end
end

-- A hot reload: take over the episode the previous version had open (the new background learns the scene
-- again from its first frame, so motion that goes on extends it, and quiet closes it as before).
function on_reload(kept)
  keep = kept
  last_motion, peak = kept.last_motion or 0, kept.peak or 0
  for _, ep in ipairs(vigil.episodes()) do
    if ep.id == kept.episode then episode = ep end
  end
  if episode then episode:extend(kept.last_ts) else keep.episode = nil end
end

-- The camera stops: closed at the last motion; no reason given, so the host says why it stopped.
function on_stop()
  if episode then episode:close(last_motion); episode = nil end
end
