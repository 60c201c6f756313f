-- tamper.lua — the camera covered, defocused or moved. Over its first learn_seconds the rule learns a reference
-- view: the mean luma of a 16 x 9 grid of cells, the luma histogram and the sharpness (variance of the
-- Laplacian); it then compares every frame with it, and refreshes it slowly while nothing is wrong:
--
--   covered    the frame is very dark (mean luma < dark) or very bright (> bright) with little variation
--              (standard deviation of luma < cover_stddev): a hand, a cap, tape, a torch. Needs no reference.
--   defocused  sharpness below sharpness_ratio of the reference's (not covered).
--   moved      most of the view changed: at least moved_fraction of the grid cells differ from the reference
--              by more than moved_threshold (each cell taken relative to the frame's mean, so a change of
--              light alone does not count) and the layout of the grid no longer matches the reference's
--              (the correlation of the cells with the reference's cells is below moved_pattern: a change of
--              contrast keeps it), or the layout is lost but found again shifted by a few cells (the camera
--              was turned: a low-contrast view may change too little for moved_fraction), not covered nor
--              defocused. A car or a person crossing the view
--              changes a part of it (and the histogram a lot: a grey road has a narrow one), not most of it.
--
-- A condition that has held for min_ms (moved: moved_ms) opens an episode with opened_at = the frame it began and
-- payload.reason = "covered" | "defocused" | "moved"; it is extended while the condition holds and closed at
-- the last frame it held once it has been gone for clear_ms (close_reason "timeout", payload.close_reason
-- "ended"). One episode per condition. The preview (and the frame_preview, 240 lines high) is the whole frame
-- when the episode opened. A "defocused" or "moved" view that lasts relearn_seconds becomes the new normal: the
-- episode closes (payload.close_reason "relearned", no close_reason: the view is still changed) and the
-- reference is learned anew. When the camera stops, at the last frame the condition held with the host's
-- reason (shutdown, end_of_stream, ...: docs/lua-api.md, "Why an episode closed").
--
-- params (all optional):
--   learn_seconds     how long the reference is learned at the start (default 3)
--   min_ms            how long a condition must hold before its episode opens (default 1000)
--   moved_ms          how long "moved" must hold (default 1500: a big car or a person close to the camera
--                     changes the view's layout for a second or so; a turned camera stays turned)
--   clear_ms          how long a condition must be gone before its episode closes (default 500)
--   dark, bright      mean luma below / above which a flat frame is covered (defaults 40, 220)
--   cover_stddev      standard deviation of luma below which a dark or bright frame is flat (default 15)
--   sharpness_ratio   defocused below this fraction of the reference sharpness (default 0.3)
--   moved_fraction    moved when at least this fraction of the grid cells changed (default 0.5)
--   moved_threshold   luma difference that makes a cell changed (default 15)
--   moved_pattern     the cells' correlation with the reference below which most cells changed is a moved
--                     view (default 0.6)
--   moved_correlation also moved when the histogram correlation with the reference falls below this (default
--                     -1: never; before 0.2 the default was 0.5, which took every big object for a turned camera)
--   refresh_seconds   time constant of the reference's refresh while no condition holds (default 60)
--   relearn_seconds   a "defocused" or "moved" view lasting this long is learned as the new reference
--                     (default 300; 0 never)
--   episode_type      (default "tamper")
--
-- payload: { reason, mean, stddev } (covered), { reason, sharpness, reference } (defocused),
--          { reason, changed, correlation, pattern } (moved): the measures when the episode opened.
local vigil = require "vigil"

local RULE = "tamper"
local GX, GY = 16, 9 -- the grid of cells compared with the reference

-- Parameters ---------------------------------------------------------------------------------------------

local p = vigil.params
local params = vigil.check_params(RULE, { "learn_seconds", "min_ms", "moved_ms", "clear_ms", "dark", "bright",
                                          "cover_stddev", "sharpness_ratio", "moved_fraction",
                                          "moved_threshold", "moved_correlation", "moved_pattern", "refresh_seconds",
                                          "relearn_seconds", "episode_type" })

local learn_ms = params:number("learn_seconds", 3, 0.04, 3600) * 1000
local min_ms = params:number("min_ms", 1000, 0, 3600000)
local moved_ms = params:number("moved_ms", 1500, 0, 3600000)
local clear_ms = params:number("clear_ms", 500, 0, 3600000)
local dark = params:number("dark", 40, 0, 255)
local bright = params:number("bright", 220, 0, 255)
if bright <= dark then params:bad("bright", bright, ("above dark (%s) expected"):format(dark)) end
local cover_stddev = params:number("cover_stddev", 15, 0, 128)
local sharpness_ratio = params:number("sharpness_ratio", 0.3, 0, 1)
local moved_fraction = params:number("moved_fraction", 0.5, 0, 1)
local moved_threshold = params:number("moved_threshold", 15, 0, 255)
local moved_correlation = params:number("moved_correlation", -1, -1, 1)
local moved_pattern = params:number("moved_pattern", 0.6, -1, 1)
local refresh_ms = params:number("refresh_seconds", 60, 1, 86400 * 365) * 1000
local relearn_ms = params:number("relearn_seconds", 300, 0, 86400 * 365) * 1000
local episode_type = params:string("episode_type", "tamper")

local MIN_REFERENCE_SHARPNESS = 5 -- a flatter reference view cannot tell defocus
local PANNED_PATTERN, PANNED_MATCH = 0.3, 0.9 -- the view's layout lost, and found again a few cells away

-- Measures ----------------------------------------------------------------------------------------------------

local CELLS = {}
for j = 0, GY - 1 do
  for i = 0, GX - 1 do CELLS[#CELLS + 1] = { i / GX, j / GY, 1 / GX, 1 / GY } end
end

-- Everything compared with the reference: cell means (and their mean), histogram, its mean and standard
-- deviation, sharpness.
local function measure(frame)
  local m = { cells = {}, hist = frame:histogram(), sharpness = frame:sharpness() }
  local sum = 0
  for i, box in ipairs(CELLS) do
    local v = frame:mean(box)
    m.cells[i], sum = v, sum + v
  end
  m.cells_mean = sum / #CELLS
  local n, s, sq = 0, 0, 0
  for i = 1, 256 do
    local c = m.hist[i]
    n, s, sq = n + c, s + c * (i - 1), sq + c * (i - 1) * (i - 1)
  end
  m.mean = s / n
  m.stddev = math.sqrt(math.max(0, sq / n - m.mean * m.mean))
  return m
end

local function round(x, digits)
  local f = 10 ^ (digits or 2)
  return math.floor(x * f + 0.5) / f
end

-- State --------------------------------------------------------------------------------------------------------
-- Everything lives in vigil.keep (plain values), so a hot reload keeps the learned reference and the open
-- episodes: keep.ref = { cells, cells_mean, hist, sharpness } once learned; keep.learn = running sums while
-- learning; keep.conditions[reason] = { began, last, episode (id) }.

local keep = vigil.keep
keep.conditions = keep.conditions or {}
local episodes = {} -- reason -> open episode handle
local REASONS = { "covered", "defocused", "moved" }

local function start_learning(ts)
  keep.ref = nil
  keep.learn = { since = ts, n = 0, sharpness = 0, cells = {}, hist = {} }
end

local function learn(l, m)
  l.n = l.n + 1
  l.sharpness = l.sharpness + m.sharpness
  for i = 1, #CELLS do l.cells[i] = (l.cells[i] or 0) + m.cells[i] end
  for i = 1, 256 do l.hist[i] = (l.hist[i] or 0) + m.hist[i] end
end

local function finish_learning(l)
  local ref = { sharpness = l.sharpness / l.n, cells = {}, hist = {}, cells_mean = 0 }
  for i = 1, #CELLS do
    ref.cells[i] = l.cells[i] / l.n
    ref.cells_mean = ref.cells_mean + ref.cells[i] / #CELLS
  end
  for i = 1, 256 do ref.hist[i] = l.hist[i] / l.n end
  keep.ref, keep.learn = ref, nil
end

-- Moves the reference a step toward this frame.
local function refresh(ref, m, a)
  ref.sharpness = ref.sharpness + a * (m.sharpness - ref.sharpness)
  ref.cells_mean = ref.cells_mean + a * (m.cells_mean - ref.cells_mean)
  for i = 1, #CELLS do ref.cells[i] = ref.cells[i] + a * (m.cells[i] - ref.cells[i]) end
  for i = 1, 256 do ref.hist[i] = ref.hist[i] + a * (m.hist[i] - ref.hist[i]) end
end

-- Pearson correlation of the grid's cell means with the reference's: the layout of the view. A change of
-- light or contrast (even through the camera's tone curve) keeps it high; a turned camera breaks it.
local function cell_correlation(m, ref)
  local sab, saa, sbb = 0, 0, 0
  for i = 1, #CELLS do
    local a, b = m.cells[i] - m.cells_mean, ref.cells[i] - ref.cells_mean
    sab, saa, sbb = sab + a * b, saa + a * a, sbb + b * b
  end
  if saa == 0 or sbb == 0 then return saa == sbb and 1 or 0 end
  return sab / math.sqrt(saa * sbb)
end

-- The view panned: the grid matches the reference shifted by a few cells (at least half of the grid still
-- overlapping) far better than unshifted. Returns the best correlation at a shift other than none.
local function shifted_match(m, ref)
  local best = -1
  for dy = -math.floor(GY / 2), math.floor(GY / 2) do
    for dx = -math.floor(GX / 2), math.floor(GX / 2) do
      if dx ~= 0 or dy ~= 0 then
        local n, sa, sb, sab, saa, sbb = 0, 0, 0, 0, 0, 0
        for j = math.max(0, -dy), math.min(GY, GY - dy) - 1 do
          for i = math.max(0, -dx), math.min(GX, GX - dx) - 1 do
            local a, b = m.cells[j * GX + i + 1], ref.cells[(j + dy) * GX + i + dx + 1]
            n, sa, sb, sab, saa, sbb = n + 1, sa + a, sb + b, sab + a * b, saa + a * a, sbb + b * b
          end
        end
        local va, vb = saa - sa * sa / n, sbb - sb * sb / n
        if n * 2 >= #CELLS and va > 0 and vb > 0 then
          local c = (sab - sa * sb / n) / math.sqrt(va * vb)
          if c > best then best = c end
        end
      end
    end
  end
  return best
end

local function covered(m)
  return (m.mean < dark or m.mean > bright) and m.stddev < cover_stddev
end

-- Which condition this frame shows (at most one: covered, else defocused, else moved), and its payload.
local function condition(m, ref)
  if covered(m) then return "covered", { mean = round(m.mean, 1), stddev = round(m.stddev, 1) } end
  if ref.sharpness >= MIN_REFERENCE_SHARPNESS and m.sharpness < sharpness_ratio * ref.sharpness then
    return "defocused", { sharpness = round(m.sharpness, 1), reference = round(ref.sharpness, 1) }
  end
  local changed = 0
  for i = 1, #CELLS do
    if math.abs((m.cells[i] - m.cells_mean) - (ref.cells[i] - ref.cells_mean)) > moved_threshold then
      changed = changed + 1
    end
  end
  changed = changed / #CELLS
  local correlation = vigil.histogram_correlation(ref.hist, m.hist)
  local pattern = cell_correlation(m, ref)
  local panned = pattern < PANNED_PATTERN and shifted_match(m, ref) >= PANNED_MATCH
  if (changed >= moved_fraction and pattern < moved_pattern) or panned or correlation < moved_correlation then
    return "moved", { changed = round(changed), correlation = round(correlation, 3), pattern = round(pattern, 3) }
  end
end

-- Closes the condition's episode at the last frame it held: "ended" is a close for inactivity, "relearned" is
-- not; without a why (a stop) the host says why.
local function close(reason, why)
  local c = keep.conditions[reason]
  local ep = episodes[reason]
  if ep and why == "ended" then ep:time_out(c.last, why) elseif ep then ep:close(c.last, why) end
  episodes[reason], keep.conditions[reason] = nil, nil
end

local last_ts

function on_frame(frame)
  local dt = last_ts and frame.ts - last_ts or 0
  last_ts = frame.ts
  local m = measure(frame)

  if not keep.ref then
    if not keep.learn then start_learning(frame.ts) end
    if not covered(m) then learn(keep.learn, m) end -- a covered start teaches nothing
    if frame.ts - keep.learn.since >= learn_ms and keep.learn.n > 0 then finish_learning(keep.learn) end
    return
  end

  local now, payload = condition(m, keep.ref)
  local quiet = true
  for _, reason in ipairs(REASONS) do
    local c = keep.conditions[reason]
    if reason == now then
      if not c then c = { began = frame.ts }; keep.conditions[reason] = c end
      c.last = frame.ts
      local ep = episodes[reason]
      if not ep and frame.ts - c.began >= (reason == "moved" and moved_ms or min_ms) then
        payload.reason = reason
        ep = vigil.episode(c.began, { episode_type = episode_type, payload = payload })
        ep:preview(frame)       -- the whole view, for Watcher's list
        ep:frame_preview(frame)
        episodes[reason], c.episode = ep, ep.id
      end
      if ep then
        ep:extend(frame)
        if relearn_ms > 0 and reason ~= "covered" and frame.ts - c.began >= relearn_ms then
          close(reason, "relearned")
          start_learning(frame.ts)
        end
      end
    elseif c and frame.ts - c.last >= clear_ms then
      close(reason, "ended")
    end
    if keep.conditions[reason] then quiet = false end
  end
  if quiet and keep.ref and dt > 0 then refresh(keep.ref, m, math.min(1, dt / refresh_ms)) end
end

-- A hot reload: the reference and the conditions carry on (vigil.keep); take the open episodes back.
function on_reload(kept)
  keep = kept
  keep.conditions = keep.conditions or {}
  local open = {}
  for _, ep in ipairs(vigil.episodes()) do open[ep.id] = ep end
  for reason, c in pairs(keep.conditions) do
    if c.episode then
      if open[c.episode] then episodes[reason] = open[c.episode] else keep.conditions[reason] = nil end
    end
  end
end

function on_stop()
  for _, reason in ipairs(REASONS) do
    if episodes[reason] then close(reason) end
  end
end
