-- my_rule.lua — an episode while the box in the middle of the picture differs from the scene learned
-- around it. A starting point for your own rule: copy it, change the zone and the condition.
local vigil = require "vigil"

local params = vigil.check_params("my_rule", { "level", "box", "quiet_ms" })
local level = params:number("level", 40, 1, 255)        -- luma change that counts
local quiet_ms = params:number("quiet_ms", 1000, 0, 60000)
local box = vigil.params.box or { 0.3, 0.3, 0.4, 0.4 }     -- x, y, w, h in frame fractions
local zone = vigil.zone({ { box[1], box[2] }, { box[1] + box[3], box[2] },
                          { box[1] + box[3], box[2] + box[4] }, { box[1], box[2] + box[4] } }, "box")
local background = vigil.background { threshold = level, learning_rate = 0.02 }
local episode, last_seen

function on_frame(frame)
  local m = background:update(frame):measure(zone)
  if m.changed > 0.01 then
    last_seen = frame.ts
    if not episode then
      episode = vigil.episode.open(frame, { episode_type = "box", payload = { changed = m.changed } })
    else
      episode:extend(frame)
    end
    episode:offer_preview(frame, vigil.pad(m.box, 0.2), m.changed)
  elseif episode and frame.ts - last_seen >= quiet_ms then
    episode:close(last_seen)
    episode = nil
  end
end
