-- vigil/vision.lua — the vision primitives of core/vg_vision.c for rules: zones, background/motion,
-- blobs, a centroid tracker, sharpness and histograms. Everything a rule sees is in frame fractions
-- (0..1, the same coordinates as zones and previews) and in plain Lua tables: no cdata reaches a rule,
-- so a rule cannot index memory it does not own.
local ffi = require "ffi"
local frames = require "vigil.frame"
local deprecate = require "vigil.deprecate"

ffi.cdef [[
typedef struct vg_pixel_rect { int x, y, w, h; } vg_pixel_rect;
typedef struct vg_mask { int w, h; uint8_t *px; int count; vg_pixel_rect bbox; } vg_mask;
int vg_mask_from_polygon(vg_mask *m, int w, int h, const double *xy, int npoints, char *err, size_t errlen);
int vg_mask_full(vg_mask *m, int w, int h);
void vg_mask_free(vg_mask *m);

typedef struct vg_background_options {
    double learning_rate, threshold, noise_factor, absorb_ms, ghost_ms, lightswitch;
    int compensate_light, despeckle;
} vg_background_options;
typedef struct vg_background_stats {
    double gain, raw_changed, noise; long lightswitches, ghosts, restored, absorbed;
} vg_background_stats;
typedef struct vg_background vg_background;
vg_background_options vg_background_defaults(void);
vg_background *vg_background_new(int w, int h, const vg_background_options *o);
int vg_background_update(vg_background *bg, const uint8_t *luma, int width, int height, int stride, int64_t ts_ms);
void vg_background_hold(vg_background *bg, const vg_pixel_rect *boxes, int n);
const uint8_t *vg_background_motion(const vg_background *bg);
void vg_background_get_stats(const vg_background *bg, vg_background_stats *out);
void vg_background_reset(vg_background *bg);
void vg_background_free(vg_background *bg);

typedef struct vg_zone_stats {
    int pixels, motion_pixels; double changed, mean, variance; vg_pixel_rect motion_bbox;
} vg_zone_stats;
void vg_zone_measure(const vg_mask *zone, const uint8_t *motion, const uint8_t *luma, int stride,
                     vg_zone_stats *out);

typedef struct vg_blob { vg_pixel_rect box; int area; double cx, cy; } vg_blob;
typedef struct vg_blobber vg_blobber;
vg_blobber *vg_blobber_new(int w, int h, int max_blobs);
int vg_blobs_find(vg_blobber *b, const uint8_t *motion, const vg_mask *zone, int min_area, vg_blob *out,
                  int max_out);
void vg_blobber_free(vg_blobber *b);

typedef struct vg_tracker_options { double max_distance; int max_missed; } vg_tracker_options;
typedef struct vg_track {
    uint32_t id; vg_blob blob; double prev_cx, prev_cy, vx, vy, origin_cx, origin_cy, travelled, peak_box;
    uint64_t first_seen; int age, missed, seen;
} vg_track;
typedef struct vg_tracker vg_tracker;
vg_tracker *vg_tracker_new(int max_tracks);
int vg_tracker_update(vg_tracker *t, const vg_blob *blobs, int n, const vg_tracker_options *o);
int vg_tracker_count(const vg_tracker *t);
const vg_track *vg_tracker_get(const vg_tracker *t, int i);
void vg_tracker_free(vg_tracker *t);

void vg_overlay_mask(void *o, const uint8_t *mask, int width, int height);
void vg_overlay_box(void *o, double x, double y, double w, double h, int ink);
void vg_overlay_line(void *o, double x0, double y0, double x1, double y1, int ink);
void vg_overlay_text(void *o, double x, double y, const char *text, int ink);

double vg_sharpness(const uint8_t *luma, int w, int h, int stride, const vg_mask *mask);
long vg_histogram(const uint8_t *luma, int w, int h, int stride, const vg_mask *mask, uint32_t hist[256]);
double vg_histogram_correlation(const uint32_t a[256], const uint32_t b[256]);
double vg_histogram_chi2(const uint32_t a[256], const uint32_t b[256]);
]]

local C = ffi.C
local vision = {}
local MAX_BLOBS = 64
-- The C objects behind a background or tracker, out of the rule's reach: a rule holds a plain table, this
-- module keeps its cdata here (weak keys: they go with the table).
local handles = setmetatable({}, { __mode = "k" })

local function opt_number(opts, name, default, lo, hi)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v < lo or v > hi then
    error(("%s = %s: a number %s..%s expected"):format(name, tostring(v), lo, hi), 3)
  end
  return v
end

-- The overlay (vigil replay --overlay): what the primitives see is drawn on the frame when the camera
-- writes one (frame.overlay is NULL otherwise, and every draw is skipped).
local INK = { motion = 0, blob = 1, track = 2, zone = 3, line = 4, episode = 5, text = 6 }
local function overlay_of(f)
  local o = f.overlay
  if o ~= nil then return o end
  return nil
end

local drawn_zones = setmetatable({}, { __mode = "k" }) -- zone -> frame index it was drawn on

local function draw_polygon(o, pts, ink)
  local n = #pts / 2
  for i = 1, n do
    local j = i % n + 1
    C.vg_overlay_line(o, pts[2 * i - 1], pts[2 * i], pts[2 * j - 1], pts[2 * j], ink)
  end
end

local function draw_zone(f, zone)
  local o = overlay_of(f)
  if not o or not zone or drawn_zones[zone] == f.index then return end
  drawn_zones[zone] = f.index
  draw_polygon(o, zone.points, INK.zone)
  if zone.name then C.vg_overlay_text(o, zone.points[1], zone.points[2], zone.name, INK.zone) end
end

local function fraction_rect(r, w, h)
  return { x = r.x / w, y = r.y / h, w = r.w / w, h = r.h / h }
end

-- Zones --------------------------------------------------------------------------------------------

local Zone = {}
Zone.__index = Zone
local zone_mask -- defined below

-- A polygon in frame fractions: {{x =, y =}, ...} (or {{x, y}, ...}, or a flat {x1, y1, x2, y2, ...}), with
-- options {name = "gate"}. vigil.zone(points, "gate") is the older spelling (deprecated).
function vision.zone(points, opts)
  if type(points) ~= "table" then error("zone: a list of points expected", 2) end
  local name
  if type(opts) == "string" then
    deprecate.use('vigil.zone(points, "name")', 'vigil.zone(points, {name = "name"})')
    name = opts
  elseif type(opts) == "table" then
    name = opts.name
    if name ~= nil and type(name) ~= "string" then error("zone: name must be a string", 2) end
  elseif opts ~= nil then
    error("zone: options {name = ...} expected", 2)
  end
  local flat = {}
  for i, p in ipairs(points) do
    if type(p) == "table" then flat[#flat + 1] = p.x or p[1]; flat[#flat + 1] = p.y or p[2]
    else flat[#flat + 1] = p end
    if type(flat[#flat]) ~= "number" then error(("zone: point %d is not a pair of numbers"):format(i), 2) end
  end
  if #flat % 2 ~= 0 or #flat < 6 then error("zone: at least 3 points (x, y) expected", 2) end
  local zone = setmetatable({ name = name, points = flat }, Zone)
  handles[zone] = { masks = {} }
  local ok, err = pcall(zone_mask, zone, 64, 64) -- validate now, not at the first frame
  if not ok then error(err, 2) end
  return zone
end

-- The zone rasterized at w x h (built once per size, then reused); host-side only (a mask is cdata).
zone_mask = function(self, w, h)
  local masks = handles[self].masks
  local key = w * 65536 + h
  local m = masks[key]
  if m then return m end
  m = ffi.gc(ffi.new("vg_mask[1]"), function(p) C.vg_mask_free(p) end)
  local n = #self.points / 2
  local xy = ffi.new("double[?]", #self.points, self.points)
  local err = ffi.new("char[160]")
  if C.vg_mask_from_polygon(m, w, h, xy, n, err, 160) ~= 0 then
    error("zone" .. (self.name and (" " .. self.name) or "") .. ": " .. ffi.string(err), 2)
  end
  masks[key] = m
  return m
end

-- Whether a point in frame fractions lies inside the polygon (even-odd rule).
function Zone:contains(x, y)
  local f = frames.in_progress()
  if f then draw_zone(f, self) end
  local pts, inside = self.points, false
  local n = #pts / 2
  local j = n
  for i = 1, n do
    local xi, yi, xj, yj = pts[2 * i - 1], pts[2 * i], pts[2 * j - 1], pts[2 * j]
    if (yi > y) ~= (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi then inside = not inside end
    j = i
  end
  return inside
end

-- opts.zone of a call that takes {zone = z}: a zone or nil (what a zone passed where options go says).
local function zone_option(opts, what, level)
  if opts == nil then return nil end
  if type(opts) ~= "table" or getmetatable(opts) == Zone then
    error(what .. ": options {zone = z} expected", level + 1)
  end
  local z = opts.zone
  if z ~= nil and getmetatable(z) ~= Zone then error(what .. ": zone must be a vigil.zone", level + 1) end
  return z
end

local full_masks = {}
local function mask_of(zone, w, h)
  if zone then return zone_mask(zone, w, h) end
  local key = w * 65536 + h
  local m = full_masks[key]
  if not m then
    m = ffi.gc(ffi.new("vg_mask[1]"), function(p) C.vg_mask_free(p) end)
    C.vg_mask_full(m, w, h)
    full_masks[key] = m
  end
  return m
end

-- Background model and motion ----------------------------------------------------------------------

local Background = {}
Background.__index = Background
local DEFAULTS = C.vg_background_defaults()

-- opts (all optional; the defaults are vg_background_defaults() in core/vg_background.c):
--   threshold        least luma difference that counts as change (1..255)
--   noise_factor     a pixel's threshold is at least this many times its measured noise (0 = off)
--   learning_rate    how fast the background follows slow change, per frame (0..1)
--   absorb_seconds   what stands still this long (and is not held) becomes background (0 = never)
--   ghost_seconds    still regions are tested for ghosts (the background uncovered when something left)
--                    after this long (0 = never)
--   lightswitch      this fraction of the frame changing at once re-learns the background (0 = never)
--   compensate_light compare away global light and exposure changes (default true)
--   despeckle        remove isolated changed pixels before counting (default true)
--   foreground_factor  accepted for rules written before 0.2 and ignored: moving pixels never learn now
function vision.background(opts)
  opts = opts or {}
  local function flag(name)
    local v = opts[name]
    if v == nil then return true end
    if type(v) ~= "boolean" then error(("%s = %s: true or false expected"):format(name, tostring(v)), 3) end
    return v
  end
  opt_number(opts, "foreground_factor", 0, 0, 1)
  local o = ffi.new("vg_background_options", DEFAULTS)
  o.threshold = opt_number(opts, "threshold", DEFAULTS.threshold, 1, 255)
  o.noise_factor = opt_number(opts, "noise_factor", DEFAULTS.noise_factor, 0, 50)
  o.learning_rate = opt_number(opts, "learning_rate", DEFAULTS.learning_rate, 0, 1)
  o.absorb_ms = opt_number(opts, "absorb_seconds", DEFAULTS.absorb_ms / 1000, 0, 86400) * 1000
  o.ghost_ms = opt_number(opts, "ghost_seconds", DEFAULTS.ghost_ms / 1000, 0, 86400) * 1000
  o.lightswitch = opt_number(opts, "lightswitch", DEFAULTS.lightswitch, 0, 1)
  o.compensate_light = flag("compensate_light") and 1 or 0
  o.despeckle = flag("despeckle") and 1 or 0
  local bg = setmetatable({ threshold = o.threshold, learning_rate = o.learning_rate }, Background)
  handles[bg] = { options = o, stats = ffi.new("vg_zone_stats[1]"), bstats = ffi.new("vg_background_stats[1]"),
                  blobs_out = ffi.new("vg_blob[?]", MAX_BLOBS), holds = ffi.new("vg_pixel_rect[?]", MAX_BLOBS) }
  return bg
end

local function ensure_model(bg, w, h)
  local hd = handles[bg]
  if hd.model and hd.w == w and hd.h == h then return hd end
  hd.model = ffi.gc(C.vg_background_new(w, h, hd.options), C.vg_background_free)
  hd.blobber = ffi.gc(C.vg_blobber_new(w, h, MAX_BLOBS), C.vg_blobber_free)
  hd.w, hd.h = w, h
  return hd
end

-- Feeds one frame: computes its motion mask against the model, then learns it. Call once per frame.
function Background:update(frame)
  local f = frames.current(frame)
  local hd = ensure_model(self, f.width, f.height)
  C.vg_background_update(hd.model, f.luma, f.width, f.height, f.stride, f.ts)
  hd.frame = frame
  local o = overlay_of(f)
  if o then C.vg_overlay_mask(o, C.vg_background_motion(hd.model), hd.w, hd.h) end
  return self
end

-- Boxes {x, y, w, h} in frame fractions (tracked objects that stopped) whose pixels are not absorbed into
-- the background from the next update on, until hold is called again; hold() or hold({}) releases them.
function Background:hold(boxes)
  local hd = handles[self]
  if not hd.model then return self end
  local n = 0
  for _, b in ipairs(boxes or {}) do
    if n >= MAX_BLOBS then break end
    local r = hd.holds[n]
    local x, y, w, h = b.x or b[1], b.y or b[2], b.w or b[3], b.h or b[4]
    r.x, r.y = math.floor(x * hd.w), math.floor(y * hd.h)
    r.w, r.h = math.ceil(w * hd.w) + 1, math.ceil(h * hd.h) + 1
    n = n + 1
  end
  C.vg_background_hold(hd.model, hd.holds, n)
  return self
end

function Background:reset()
  local hd = handles[self]
  if hd.model then C.vg_background_reset(hd.model) end
end

local function require_update(bg)
  local hd = handles[bg]
  if not hd.frame then error("background: call :update(frame) first", 3) end
  return frames.current(hd.frame, 3), hd
end

-- What the last update saw: {gain (light change compared away, 1 = none), raw_changed (fraction over
-- threshold before despeckle), noise (mean luma noise of the background), lightswitches, ghosts}.
function Background:stats()
  local _, hd = require_update(self)
  C.vg_background_get_stats(hd.model, hd.bstats)
  local s = hd.bstats[0]
  return { gain = s.gain, raw_changed = s.raw_changed, noise = s.noise, lightswitches = tonumber(s.lightswitches),
           ghosts = tonumber(s.ghosts) }
end

-- Motion and luma statistics inside opts.zone (whole frame when nil):
-- {changed = fraction of zone pixels moving, motion_pixels, pixels, mean, variance, box = {x,y,w,h}|nil}.
-- bg:measure(zone) is the older spelling (deprecated).
function Background:measure(opts)
  local zone
  if getmetatable(opts) == Zone then
    deprecate.use("bg:measure(zone)", "bg:measure{zone = zone}")
    zone = opts
  else
    zone = zone_option(opts, "measure", 2)
  end
  local f, hd = require_update(self)
  local s = hd.stats
  draw_zone(f, zone)
  C.vg_zone_measure(mask_of(zone, hd.w, hd.h), C.vg_background_motion(hd.model), f.luma, f.stride, s)
  local out = { changed = s[0].changed, motion_pixels = s[0].motion_pixels, pixels = s[0].pixels,
                mean = s[0].mean, variance = s[0].variance }
  if s[0].motion_pixels > 0 then out.box = fraction_rect(s[0].motion_bbox, hd.w, hd.h) end
  return out
end

-- Connected moving regions, largest first. opts: zone, min_area (fraction of the frame, default 0.001),
-- max (default 16). Each: {x, y, w, h, cx, cy (fractions), area (fraction of the frame), pixels}.
function Background:blobs(opts)
  opts = opts or {}
  local f, hd = require_update(self)
  local w, h = hd.w, hd.h
  draw_zone(f, opts.zone)
  local min_pixels = math.max(1, math.floor(opt_number(opts, "min_area", 0.001, 0, 1) * w * h))
  local max = math.min(MAX_BLOBS, opt_number(opts, "max", 16, 1, MAX_BLOBS))
  local zone = opts.zone and mask_of(opts.zone, w, h) or nil
  local n = C.vg_blobs_find(hd.blobber, C.vg_background_motion(hd.model), zone, min_pixels, hd.blobs_out, max)
  local list = {}
  for i = 0, n - 1 do
    local b = hd.blobs_out[i]
    local t = fraction_rect(b.box, w, h)
    t.cx, t.cy = (b.cx + 0.5) / w, (b.cy + 0.5) / h
    t.area, t.pixels = b.area / (w * h), b.area
    t._px = { b.box.x, b.box.y, b.box.w, b.box.h, b.cx, b.cy, w, h }
    list[#list + 1] = t
  end
  local o = overlay_of(f)
  if o then for _, t in ipairs(list) do C.vg_overlay_box(o, t.x, t.y, t.w, t.h, INK.blob) end end
  return list
end

-- Tracker ------------------------------------------------------------------------------------------

local Tracker = {}
Tracker.__index = Tracker

-- opts: max_distance (fraction of the frame width a centroid may stray from where its track predicted it,
-- per frame; default 0.1), max_missed (frames a track survives unseen, default 12), max_tracks (default 32).
function vision.tracker(opts)
  opts = opts or {}
  local max_tracks = opt_number(opts, "max_tracks", 32, 1, 1024)
  local tracker = setmetatable({
    max_distance = opt_number(opts, "max_distance", 0.1, 0, 2),
    max_missed = opt_number(opts, "max_missed", 12, 0, 100000),
    w = 1, h = 1,
  }, Tracker)
  handles[tracker] = { c = ffi.gc(C.vg_tracker_new(max_tracks), C.vg_tracker_free),
                       input = ffi.new("vg_blob[?]", MAX_BLOBS), options = ffi.new("vg_tracker_options") }
  return tracker
end

-- The overlay: each track's box, id and path (its last PATH_POINTS centres). Only while a frame of this
-- on_frame call is current and the camera writes an overlay.
local PATH_POINTS = 40
local function draw_tracks(hd, tracks)
  local f = frames.in_progress()
  local o = f and overlay_of(f)
  if not o then hd.paths = nil; return end
  hd.paths = hd.paths or {}
  local alive = {}
  for _, t in ipairs(tracks) do
    alive[t.id] = true
    local path = hd.paths[t.id] or {}
    hd.paths[t.id] = path
    if t.missed == 0 then
      path[#path + 1] = { t.cx, t.cy }
      if #path > PATH_POINTS then table.remove(path, 1) end
    end
    for i = 2, #path do C.vg_overlay_line(o, path[i - 1][1], path[i - 1][2], path[i][1], path[i][2], INK.track) end
    C.vg_overlay_box(o, t.x, t.y, t.w, t.h, INK.track)
    C.vg_overlay_text(o, t.x, math.max(0, t.y - 0.05), "#" .. t.id, INK.track)
  end
  for id in pairs(hd.paths) do if not alive[id] then hd.paths[id] = nil end end
end

-- Feeds this frame's blobs (from Background:blobs); returns the live tracks:
-- {id, x, y, w, h, cx, cy, prev_cx, prev_cy, vx, vy (per frame), origin_cx, origin_cy, travelled (fraction
-- of the frame width), age, seen, missed}, ids stable across frames.
function Tracker:update(blobs)
  local hd = handles[self]
  local n = math.min(#blobs, MAX_BLOBS)
  for i = 1, n do
    local p, b = blobs[i]._px, hd.input[i - 1]
    if not p then error("tracker: blobs must come from background:blobs()", 2) end
    b.box.x, b.box.y, b.box.w, b.box.h, b.cx, b.cy = p[1], p[2], p[3], p[4], p[5], p[6]
    b.area = blobs[i].pixels
    self.w, self.h = p[7], p[8]
  end
  local w, h = self.w, self.h
  hd.options.max_distance = self.max_distance * w
  hd.options.max_missed = self.max_missed
  C.vg_tracker_update(hd.c, hd.input, n, hd.options)
  local tracks = {}
  for i = 0, C.vg_tracker_count(hd.c) - 1 do
    local t = C.vg_tracker_get(hd.c, i)
    local out = fraction_rect(t.blob.box, w, h)
    out.id = tonumber(t.id)
    out.cx, out.cy = (t.blob.cx + 0.5) / w, (t.blob.cy + 0.5) / h
    out.prev_cx, out.prev_cy = (t.prev_cx + 0.5) / w, (t.prev_cy + 0.5) / h
    out.origin_cx, out.origin_cy = (t.origin_cx + 0.5) / w, (t.origin_cy + 0.5) / h
    out.vx, out.vy = t.vx / w, t.vy / h
    out.travelled = t.travelled / w
    out.age, out.seen, out.missed = t.age, t.seen, t.missed
    tracks[#tracks + 1] = out
  end
  draw_tracks(hd, tracks)
  return tracks
end

-- Drawing on the overlay --------------------------------------------------------------------------

-- A rule's own marks on the overlay (nothing happens without one): a line {{x1, y1}, {x2, y2}} and a box
-- {x, y, w, h} in frame fractions, with an optional label.
-- Options {label = text}; a label string in their place is the older spelling (deprecated).
local function label_option(opts, what)
  if opts == nil then return nil end
  if type(opts) == "table" then return opts.label end
  deprecate.use(("vigil.%s(frame, ..., label)"):format(what), ("vigil.%s(frame, ..., {label = label})"):format(what))
  return opts
end

function vision.draw_line(frame, points, opts)
  local label = label_option(opts, "draw_line")
  local o = overlay_of(frames.current(frame))
  if not o then return end
  local a, b = points[1], points[2]
  C.vg_overlay_line(o, a.x or a[1], a.y or a[2], b.x or b[1], b.y or b[2], INK.line)
  if label then C.vg_overlay_text(o, a.x or a[1], a.y or a[2], tostring(label), INK.line) end
end

function vision.draw_box(frame, box, opts)
  local label = label_option(opts, "draw_box")
  local o = overlay_of(frames.current(frame))
  if not o or not box then return end
  local x, y, w, h = box.x or box[1], box.y or box[2], box.w or box[3], box.h or box[4]
  C.vg_overlay_box(o, x, y, w, h, INK.line)
  if label then C.vg_overlay_text(o, x, y + h + 0.01, tostring(label), INK.line) end
end

-- Sharpness and histograms -------------------------------------------------------------------------

-- frame:sharpness{zone = z}: variance of the Laplacian of the luma inside the zone (whole frame when nil): low
-- means blurred or covered.
local function sharpness(frame, zone, level)
  local f = frames.current(frame, level + 1)
  local mask = zone and zone_mask(zone, f.width, f.height) or nil
  return C.vg_sharpness(f.luma, f.width, f.height, f.stride, mask)
end

function frames.methods.sharpness(frame, opts) return sharpness(frame, zone_option(opts, "sharpness", 2), 2) end

local hist_a, hist_b = ffi.new("uint32_t[256]"), ffi.new("uint32_t[256]")

-- frame:histogram{zone = z}: the 256-bin luma histogram inside the zone as a Lua list (hist[1] counts luma 0).
local function histogram(frame, zone, level)
  local f = frames.current(frame, level + 1)
  local mask = zone and zone_mask(zone, f.width, f.height) or nil
  C.vg_histogram(f.luma, f.width, f.height, f.stride, mask, hist_a)
  local out = {}
  for i = 0, 255 do out[i + 1] = hist_a[i] end
  return out
end

function frames.methods.histogram(frame, opts) return histogram(frame, zone_option(opts, "histogram", 2), 2) end

-- The older spellings (deprecated): functions of the module.
function vision.sharpness(frame, zone)
  deprecate.use("vigil.sharpness(frame, zone)", "frame:sharpness{zone = zone}")
  return sharpness(frame, zone, 2)
end

function vision.histogram(frame, zone)
  deprecate.use("vigil.histogram(frame, zone)", "frame:histogram{zone = zone}")
  return histogram(frame, zone, 2)
end

local function load_hist(dst, list, which)
  if type(list) ~= "table" or #list ~= 256 then error(which .. ": a 256-bin histogram expected", 3) end
  for i = 0, 255 do dst[i] = list[i + 1] end
end

-- 1 when two histograms have the same shape, near 0 or below when unrelated.
function vision.histogram_correlation(a, b)
  load_hist(hist_a, a, "first"); load_hist(hist_b, b, "second")
  return C.vg_histogram_correlation(hist_a, hist_b)
end

-- 0 (same) .. 1 (disjoint): symmetric chi-square distance of the normalised histograms.
function vision.histogram_distance(a, b)
  load_hist(hist_a, a, "first"); load_hist(hist_b, b, "second")
  return C.vg_histogram_chi2(hist_a, hist_b)
end

return vision
