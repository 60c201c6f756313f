-- line_crossing.lua — counts objects crossing a line, by direction. Objects are moving blobs (background
-- subtraction) followed by a tracker; a crossing is a track whose centroid goes from one side of the line to
-- the other, through the segment between its two points (passing beyond either end is no crossing). Each
-- crossing is a short episode, opened at the first frame the centroid was over the line and closed at the frame
-- the crossing was confirmed (past the margin: the frame its preview and detection show), with the running
-- counts in its payload (payload.close_reason "crossed"; no close_reason: docs/lua-api.md, "Why an episode
-- closed").
--
-- Sides. The line is directed, from its first point a to its second point b. Standing at a and looking
-- toward b on the picture (x to the right, y down), side A is on your left and side B on your right;
-- "a_to_b" is a crossing from side A to side B, "b_to_a" the other way. So a line drawn bottom to top,
-- {{0.5, 0.9}, {0.5, 0.1}}, has A on the left half: walking left to right is a_to_b. A line drawn left to
-- right, {{0.1, 0.5}, {0.9, 0.5}}, has A above it: walking down the picture is a_to_b.
--
-- params:
--   line          required: {{x1, y1}, {x2, y2}}, the points a and b in frame fractions
--   name          the line's name in the payload (default "line")
--   direction     "both" (default), "a_to_b" or "b_to_a": which crossings are counted
--   cooldown_ms   a track whose crossing was not counted (not its direction) is not counted either way for
--                 this long (default 1000); a counted object is never counted again
--   margin        the centroid must be this far past the line, in frame fractions, before a crossing is
--                 confirmed: jitter along the line counts nothing (default 0.01)
--   min_area      smallest object, a fraction of the frame's area (default 0.002)
--   threshold     least luma difference from the background that counts as moving (default: the
--                 background's, 12; each pixel's own threshold also follows its noise, noise_factor 4)
--   absorb_seconds  what stands still this long, never having moved, becomes background (default 8);
--                 an object that moved and stopped stays tracked until it moves away
--   learning_rate how fast the background follows slow change, per frame, 0..1 (default 0.02)
--   max_distance  how far an object may move between two frames, a fraction of the frame width (default 0.1)
--   max_missed    frames an object may go undetected before it is gone (default 12)
--   episode_type  (default "line_crossing")
--
-- payload: { line = name, direction = "a_to_b" | "b_to_a", counts = { a_to_b = N, b_to_a = M }, track = id }
-- (counts are running totals since the rule started, kept across a hot reload; with direction set, the
-- other way stays 0). detections: the crossing object's box, when params.object_class says what it is ("human",
-- "vehicle", ...: Central's schema, with its track id); without a class the box goes in payload.box. Preview: the object, at the frame the
-- crossing was confirmed.
local vigil = require "vigil"

local RULE = "line_crossing"

-- Parameters ---------------------------------------------------------------------------------------------

local p = vigil.params
local params = vigil.check_params(RULE, { "line", "name", "direction", "cooldown_ms", "margin", "min_area",
                                          "threshold", "noise_factor", "learning_rate", "absorb_seconds",
                                          "max_distance", "max_missed",
                                          "episode_type", "object_class" })

local line = params:points("line", 2, 2, "a line")
local ax, ay, bx, by = line[1][1], line[1][2], line[2][1], line[2][2]
local length = math.sqrt((bx - ax) ^ 2 + (by - ay) ^ 2)
if length < 0.01 then params:bad("line", p.line, "its two points are less than 0.01 apart") end
local line_name = params:string("name", "line")
local only = params:string("direction", "both", { "both", "a_to_b", "b_to_a" })
local cooldown_ms = params:number("cooldown_ms", 1000, 0, 3600000)
local margin = params:number("margin", 0.01, 0, 0.5)
local episode_type = params:string("episode_type", "line_crossing")
local object_class = params:string("object_class", nil)
local movers = params:moving_objects()

-- Geometry -------------------------------------------------------------------------------------------------

-- Signed distance of (x, y) from the line: < 0 on side A (left of a->b on the picture), > 0 on side B.
local function signed_distance(x, y)
  return ((bx - ax) * (y - ay) - (by - ay) * (x - ax)) / length
end

-- Whether the move (x0, y0) -> (x1, y1), whose ends are on either side of the line, passes through the
-- segment a-b (not beyond its ends).
local function through_segment(x0, y0, x1, y1)
  local rx, ry, sx, sy = x1 - x0, y1 - y0, bx - ax, by - ay
  local denom = rx * sy - ry * sx
  if denom == 0 then return false end
  local u = ((ax - x0) * ry - (ay - y0) * rx) / denom -- where along a->b the move meets the line
  return u >= 0 and u <= 1
end

-- State ------------------------------------------------------------------------------------------------------
-- The counts, and the highest track id shown (a new tracker after a reload counts from 1 again, so its ids are
-- shifted past the old ones), live in vigil.keep to survive a hot reload. Crossing episodes are closed at once,
-- so none is ever left open.

local keep = vigil.keep
keep.counts = keep.counts or { a_to_b = 0, b_to_a = 0 }
keep.id_base = keep.id_base or 0
keep.last_id = keep.last_id or keep.id_base

-- tracker id -> { side = "a" | "b", x, y (last position clearly on that side), over_ts (first frame over the
-- line, not yet confirmed), crossed_ts (its last crossing not debounced, counted or not) }
local tracks = {}

local function crossing(frame, t, st, direction)
  if st.counted then return end -- each object is counted once
  if st.crossed_ts and st.over_ts - st.crossed_ts < cooldown_ms then return end -- a re-crossing: debounced
  st.crossed_ts = st.over_ts
  if only ~= "both" and direction ~= only then return end
  st.counted = true
  keep.counts[direction] = keep.counts[direction] + 1
  local id = keep.id_base + t.id
  if id > keep.last_id then keep.last_id = id end
  local box = { x = t.x, y = t.y, w = t.w, h = t.h }
  local ep = vigil.episode(st.over_ts, { episode_type = episode_type, payload = {
    line = line_name, direction = direction, track = id, box = not object_class and box or nil,
    counts = { a_to_b = keep.counts.a_to_b, b_to_a = keep.counts.b_to_a } } })
  if object_class then ep:set_detections({ { box = box, object_class = object_class, track = id, detected_at = frame } }) end
  ep:offer_preview(frame, vigil.pad(box, 0.5), { score = t.w * t.h })
  ep:close(frame, "crossed")
end

function on_frame(frame)
  vigil.draw_line(frame, line, { label = ("%s %d/%d"):format(line_name, keep.counts.a_to_b, keep.counts.b_to_a) })
  local live = movers:update(frame)
  local alive = {}
  for _, t in ipairs(live) do
    alive[t.id] = true
    local st = tracks[t.id]
    if not st then st = {}; tracks[t.id] = st end
    if t.missed == 0 then
      local d = signed_distance(t.cx, t.cy)
      local side = d < 0 and "a" or d > 0 and "b" or nil
      if not st.side then
        if math.abs(d) > margin then st.side, st.x, st.y = side, t.cx, t.cy end
      elseif side and side ~= st.side then
        st.over_ts = st.over_ts or frame.ts -- over the line; confirmed once past the margin
        if math.abs(d) > margin then
          if through_segment(st.x, st.y, t.cx, t.cy) then
            crossing(frame, t, st, st.side == "a" and "a_to_b" or "b_to_a")
          end
          st.side, st.x, st.y, st.over_ts = side, t.cx, t.cy, nil
        end
      else
        st.over_ts = nil -- back on its side (or on the line)
        if side and math.abs(d) > margin then st.x, st.y = t.cx, t.cy end
      end
    end
  end
  for id in pairs(tracks) do if not alive[id] then tracks[id] = nil end end
end

-- A hot reload: the counts carry on (vigil.keep); the tracker starts over with ids past the old ones.
function on_reload(kept)
  keep = kept
  keep.counts = keep.counts or { a_to_b = 0, b_to_a = 0 }
  keep.id_base = keep.last_id or 0
  keep.last_id = keep.id_base
end

function on_stop()
  -- every crossing episode is closed when it is made: nothing is left open
end
