-- motion.lua — an episode while something moves in a zone; closed after a quiet period. The preview is
-- the motion's bounding box at the frame where the most of the zone moved.
--
-- params (all optional):
--   zone          polygon in frame fractions, {{x, y}, ...}; default: the whole frame
--   threshold     luma difference that counts as change (default 25)
--   learning_rate how fast the background follows the scene, 0..1 (default 0.05)
--   min_changed   fraction of the zone that must change to count as motion (default 0.002)
--   min_frames    consecutive motion frames before an episode opens (default 2)
--   quiet_ms      no motion for this long closes the episode (default 2000)
--   episode_type  (default "motion")
local vigil = require "vigil"

local params = vigil.check_params("motion", { "zone", "threshold", "learning_rate", "min_changed", "min_frames",
                                              "quiet_ms", "episode_type" })
local zone = vigil.params.zone and vigil.zone(params:points("zone", 3, nil, "a polygon"), "motion") or nil
local background = vigil.background { threshold = params:number("threshold", 25, 1, 255),
                                      learning_rate = params:number("learning_rate", 0.05, 0, 1) }
local min_changed = params:number("min_changed", 0.002, 0, 1)
local min_frames = params:number("min_frames", 2, 1, 1000, true)
local quiet_ms = params:number("quiet_ms", 2000, 0, 3600000)
local episode_type = params:string("episode_type", "motion")

local streak = 0      -- consecutive frames with motion
local streak_start    -- ts of the first frame of the streak
local last_motion = 0 -- ts of the last frame with motion
local episode, peak

function on_frame(frame)
  local m = background:update(frame):measure(zone)
  local moving = m.changed >= min_changed
  streak = moving and streak + 1 or 0
  if streak == 1 then streak_start = frame.ts end
  if moving then last_motion = frame.ts end

  if not episode then
    if streak >= min_frames then
      peak = m.changed
      episode = vigil.episode.open(streak_start, { episode_type = episode_type,
                                            payload = { changed = peak, box = m.box } })
      episode:offer_preview(frame, vigil.pad(m.box, 0.15), m.changed)
    end
  elseif moving then
    if m.changed > peak then
      peak = m.changed
      episode:set_payload { changed = peak, box = m.box }
    end
    episode:offer_preview(frame, vigil.pad(m.box, 0.15), m.changed) -- encodes only when it beats the last
    episode:extend(frame)
  elseif frame.ts - last_motion >= quiet_ms then
    episode:close(last_motion)
    episode = nil
  end
end

function on_stop()
  if episode then episode:close(last_motion); episode = nil end
end
