-- my_rule.lua — an episode while the box in the middle of the picture differs from the scene learned
-- around it. A starting point for your own rule: copy it, change the zone and the condition.
local vigil = require "vigil"

local params = vigil.check_params("my_rule", { "level", "box", "quiet_ms" })
local level = params:number("level", 40, 1, 255)        -- luma change that counts
local quiet_ms = params:number("quiet_ms", 1000, 0, 60000)
local box = vigil.params.box or { 0.3, 0.3, 0.4, 0.4 }     -- x, y, w, h in frame fractions
local zone = vigil.zone({ { box[1], box[2] }, { box[1] + box[3], box[2] },
                          { box[1] + box[3], box[2] + box[4] }, { box[1], box[2] + box[4] } }, { name = "box" })
local background = vigil.background { threshold = level, learning_rate = 0.02 }
local episode, last_seen
local keep = vigil.keep -- what a hot reload hands to the new version: the open episode's id, the last change

function on_frame(frame)
  local m = background:update(frame):measure { zone = zone }
  keep.last_ts = frame.ts
  if m.changed > 0.01 then
    last_seen = frame.ts
    keep.last_seen = last_seen
    if not episode then
      episode = vigil.episode(frame, { episode_type = "box", payload = { changed = m.changed } })
      keep.episode = episode.id
    else
      episode:extend(frame)
    end
    episode:offer_preview(frame, vigil.pad(m.box, 0.2), { score = m.changed })
  elseif episode and frame.ts - last_seen >= quiet_ms then
    episode:time_out(last_seen, "quiet") -- closed for inactivity: Central's close_reason "timeout"
    episode, keep.episode = nil, nil
  end
end

-- Saving this file while an episode is open: the new version takes that episode over (else vigil closes it
-- after 5 s with payload.close_reason "reload").
function on_reload(kept)
  keep, last_seen = kept, kept.last_seen
  for _, ep in ipairs(vigil.episodes()) do
    if ep.id == kept.episode then episode = ep end
  end
  if episode then episode:extend(kept.last_ts) else keep.episode = nil end
end
