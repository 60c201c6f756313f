-- test_conventions.lua — the conventions at the top of docs/lua-api.md (issue 21), run inside the real host by
-- `vigil check` (tests/CMakeLists.txt): one block per convention, each with the new spelling, the old one still
-- working, and its deprecation warning given once per load naming this file's line. Also ep.payload as a live view,
-- the warning about a misspelled callback, and the log levels.
local vigil = require "vigil"

local fails = require("expect").fails

-- Every warning the rule's log path gets (the host still logs it).
local warnings = {}
local host_warn = vigil.warn
vigil.warn = function(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  warnings[#warnings + 1] = table.concat(parts, " ")
  host_warn(...)
end

local function count(needle)
  local n = 0
  for _, w in ipairs(warnings) do if w:find(needle, 1, true) then n = n + 1 end end
  return n
end

-- An old spelling warned exactly once, naming this file's line, and the new spelling it should be.
local function deprecated_once(old, new)
  local n, text = 0, nil
  for _, w in ipairs(warnings) do
    if w:find("deprecated: " .. old, 1, true) then n, text = n + 1, w end
  end
  assert(n == 1, ("%q warned %d times, once expected"):format(old, n))
  assert(text:find("test_conventions.lua:%d+: deprecated"), "the warning names file:line: " .. text)
  assert(text:find(new, 1, true), ("%q does not say to use %q"):format(text, new))
end

-- 1. Misspelled callbacks: checked in on_start (the host warns after the main chunk).
function on_strem() end

-- 2. Constructors: vigil.<noun>(what it is made of, {named options}).
local square = { { x = 0.1, y = 0.1 }, { x = 0.9, y = 0.1 }, { x = 0.9, y = 0.9 }, { x = 0.1, y = 0.9 } }
local zone = vigil.zone(square, { name = "square" })
assert(zone.name == "square")
assert(vigil.zone({ { 0.1, 0.1 }, { 0.9, 0.1 }, { 0.9, 0.9 } }).name == nil)
for _ = 1, 2 do assert(vigil.zone(square, "old").name == "old") end
deprecated_once('vigil.zone(points, "name")', 'vigil.zone(points, {name = "name"})')
fails(function() vigil.zone(square, 5) end, "zone: options {name = ...} expected")
assert(vigil.background {} and vigil.tracker {})

-- 3. Points: {x =, y =}; both notations in, both readable out.
vigil.params.zone = { { x = 0.1, y = 0.2 }, { 0.5, 0.2 }, { 0.3, 0.9 } }
local pts = vigil.check_params("conventions", { "zone" }):points("zone", 3, nil, "a polygon")
assert(pts[1].x == 0.1 and pts[1][1] == 0.1 and pts[2].y == 0.2 and pts[2][2] == 0.2, "points read both ways")
vigil.params.zone = nil
for _, points in pairs(vigil.zones) do
  for _, p in ipairs(points) do assert(p.x == p[1] and p.y == p[2], "vigil.zones points read both ways") end
end
assert(zone:contains(0.5, 0.5) and not zone:contains(0.05, 0.5))

-- 4. Boxes: {x =, y =, w =, h =} or {x, y, w, h}; named fields first wherever both are given (vigil.pad too).
local named, positional = vigil.pad({ x = 0.2, y = 0.3, w = 0.2, h = 0.1 }, 0.5), vigil.pad({ 0.2, 0.3, 0.2, 0.1 }, 0.5)
for _, k in ipairs { "x", "y", "w", "h" } do assert(math.abs(named[k] - positional[k]) < 1e-12, "pad " .. k) end
local both = vigil.pad({ 0, 0, 1, 1, x = 0.2, y = 0.3, w = 0.2, h = 0.1 }, 0)
assert(both.x == 0.2 and both.w == 0.2, "pad reads the named fields first")

local frames_seen, ep_kept, ep_plain = 0, nil, nil
local old_open_id

function on_start()
  assert(count("on_strem is not a callback vigil calls (on_frame, on_start, on_stop, on_stream, on_reload)") == 1,
         "no warning about on_strem")
  assert(count("misspelled?") == 1 and count("on_frame is not") == 0 and count("on_start is not") == 0)
  local named_line = false
  for _, w in ipairs(warnings) do named_line = named_line or w:find("test_conventions.lua:%d+: on_strem is not") ~= nil end
  assert(named_line, "the warning names the line on_strem is defined on")
end

function on_frame(frame)
  frames_seen = frames_seen + 1
  if frame.index == 0 then
    -- 5. Analyses of a frame are its methods, options in a table.
    for _ = 1, 2 do
      assert(vigil.sharpness(frame) == frame:sharpness())
      local old_hist, hist = vigil.histogram(frame), frame:histogram()
      assert(#hist == 256 and #old_hist == 256)
      for i = 1, 256 do assert(old_hist[i] == hist[i]) end
    end
    deprecated_once("vigil.sharpness(frame, zone)", "frame:sharpness{zone = zone}")
    deprecated_once("vigil.histogram(frame, zone)", "frame:histogram{zone = zone}")
    assert(frame:sharpness { zone = zone } == vigil.sharpness(frame, zone))
    local total = 0
    for _, n in ipairs(frame:histogram { zone = zone }) do total = total + n end
    assert(total > 0 and total < frame.width * frame.height, "histogram{zone=} counts the zone's pixels")
    fails(function() frame:sharpness(zone) end, "sharpness: options {zone = z} expected")

    -- 6. Coordinates are frame fractions; frame:pixel is the one call in pixels, frame:luma its twin.
    local w, h = frame.width, frame.height
    assert(frame:luma(0, 0) == frame:pixel(0, 0) and frame:luma(1, 1) == frame:pixel(w - 1, h - 1))
    assert(frame:luma(0.5, 0.25) == frame:pixel(math.floor(0.5 * w), math.floor(0.25 * h)))
    fails(function() frame:luma(w - 1, 0) end, "a point in frame fractions 0..1 expected")
    assert(frame:mean({ 0.1, 0.2, 0.3, 0.4 }) == frame:mean({ x = 0.1, y = 0.2, w = 0.3, h = 0.4 }))

    -- 7. Filters are options: bg:measure{zone =} as bg:blobs{zone =}.
    local bg = vigil.background {}
    bg:update(frame)
    local m = bg:measure { zone = zone }
    for _ = 1, 2 do
      local old = bg:measure(zone)
      assert(old.pixels == m.pixels and old.changed == m.changed)
    end
    deprecated_once("bg:measure(zone)", "bg:measure{zone = zone}")
    assert(bg:measure().pixels == w * h and m.pixels < w * h)
    bg:hold({ { 0.1, 0.1, 0.2, 0.2 }, { x = 0.5, y = 0.5, w = 0.1, h = 0.1 } }) -- both box notations
    vigil.draw_line(frame, { { x = 0.1, y = 0.1 }, { 0.9, 0.9 } }, { label = "new" })
    vigil.draw_box(frame, { 0.1, 0.1, 0.2, 0.2 }, { label = "new" })
    for _ = 1, 2 do vigil.draw_box(frame, { 0.1, 0.1, 0.2, 0.2 }, "old") end
    deprecated_once("vigil.draw_box(frame, ..., label)", "{label = label}")

  elseif frame.index == 1 then
    -- 8. Time arguments: a frame or unix ms; nil is the frame being processed.
    local a = vigil.episode(frame, { episode_type = "a" })
    local b = vigil.episode(frame.ts, { episode_type = "b" })
    local c = vigil.episode(nil, { episode_type = "c" })
    assert(a.opened_at == frame.ts and b.opened_at == frame.ts and c.opened_at == frame.ts)
    b:close(); c:close(frame.ts)
    assert(b.closed_at == frame.ts and c.closed_at == frame.ts)
    fails(function() vigil.episode("now", {}) end, "frame or time in ms expected")
    for _ = 1, 2 do old_open_id = vigil.episode.open(frame, { episode_type = "old" }):close(frame).id end
    deprecated_once("vigil.episode.open(time, opts)", "vigil.episode(time, opts)")

    -- 9. Options are a trailing table: ep:offer_preview(frame, box, {score =}).
    assert(a:offer_preview(frame, { 0.1, 0.1, 0.5, 0.5 }, { score = 0.5 }) == true and a.preview_score == 0.5)
    assert(a:offer_preview(frame, nil, { score = 0.4 }) == false)
    fails(function() a:offer_preview(frame, nil, {}) end, "score must be a number")
    for _ = 1, 2 do a:offer_preview(frame, { x = 0.1, y = 0.1, w = 0.5, h = 0.5 }, 0.7, { quality = 50 }) end
    assert(a.preview_score == 0.7)
    deprecated_once("ep:offer_preview(frame, box, score, opts)", "{score = score, ...}")

    -- 10. Writable fields are assigned; their ep:set_* methods are the same; the rest raise.
    a.episode_type = "assigned"
    assert(a.episode_type == "assigned")
    a:set_episode_type("by_method")
    assert(a.episode_type == "by_method")
    for _ = 1, 2 do a:set_type("old_setter") end
    assert(a.episode_type == "old_setter")
    deprecated_once("ep:set_type(s)", "ep.episode_type = s")
    fails(function() a.id = "1" end, "ep.id is read-only")
    fails(function() a.closed_at = 1 end, "ep.closed_at is read-only")

    -- 11. ep.payload is a live view: reads and writes agree.
    a.payload = { n = 1, list = { 1, 2 }, nested = { k = "v" } }
    local p = a.payload
    assert(p == a.payload, "the same table for the rest of the callback")
    p.n = 2
    a.payload.list[3] = 3
    a.payload.nested.k = "w"
    assert(a.payload.n == 2 and #a.payload.list == 3 and a.payload.nested.k == "w")
    local keys = 0
    for _ in pairs(a.payload) do keys = keys + 1 end
    assert(keys == 3, "pairs sees the payload")
    a:extend(frame) -- applies the view first; the view stays the live one
    assert(p == a.payload and p.n == 2)
    a:set_payload({ n = 10, list = { 1 } })
    assert(p.n == 10 and #p.list == 1 and p.nested == nil, "set_payload updates the view in place")
    -- a write just before close is applied before it
    local closing = vigil.episode(frame, { episode_type = "closing", payload = { count = 0 } })
    closing.payload.count = 3
    closing:close(frame, "done")
    assert(closing.payload.count == 3)
    -- a method's error names the rule's line, with a view (p) and without one (a fresh episode)
    local with_view = fails(function() a:preview(frame, { x = -0.1, y = 0, w = 0.5, h = 0.5 }) end, "box.x=-0.1")
    assert(with_view:find("^[^\n]*test_conventions%.lua:%d+: preview"), "with a view: " .. with_view)
    local fresh = vigil.episode(frame, { episode_type = "fresh" })
    local without = fails(function() fresh:preview(frame, { x = -0.1, y = 0, w = 0.5, h = 0.5 }) end, "box.x=-0.1")
    assert(without:find("^[^\n]*test_conventions%.lua:%d+: preview"), "without a view: " .. without)
    fresh:close(frame, "done")
    p.last = "written at the end of frame 0" -- no method after it: applied when on_frame returns
    ep_kept = a.id
    ep_plain = vigil.episode(frame, { episode_type = "plain" }).id
  else
    local found = {}
    for _, ep in ipairs(vigil.episodes()) do found[ep.id] = ep end
    local a = assert(found[ep_kept], "the episode stays open")
    assert(a.payload.n == 10 and a.payload.last == "written at the end of frame 0", "the view's writes were applied")
    assert(a.payload.big == nil and a.episode_type == "old_setter")
    assert(found[old_open_id] == nil, "the episode opened the old way closed")
    assert(found[ep_plain].payload == nil, "an episode without payload has none")
  end
end

function on_stop()
  assert(frames_seen == 3, "on_frame ran " .. frames_seen .. " times")
  do
    local a
    for _, ep in ipairs(vigil.episodes()) do if ep.id == ep_kept then a = ep end end
    -- the JSON limits hold: a view over 100000 values is refused when applied (as set_payload refuses it)
    local shared = {}
    for i = 1, 401 do shared[i] = i end
    local big = {}
    for i = 1, 250 do big[i] = shared end
    local p = a.payload
    p.big = big
    fails(function() a:extend() end, "payload")
    p.big = nil
  end
  -- 12. Log levels: one function per level; vigil.log is info.
  vigil.log("conventions: info"); vigil.debug("conventions: debug"); vigil.error("conventions: error line (expected)")
  assert(type(vigil.error) == "function")
  -- each old spelling warned once, and nothing else was deprecated
  assert(count("deprecated:") == 8, count("deprecated:") .. " deprecation warnings, 8 expected")
  print("test_conventions: all assertions passed")
end
