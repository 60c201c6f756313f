-- test_detections.lua — ep:set_detections speaks Central's schema (run inside the real host by `vigil check`):
-- a detection needs its object_class, a box in frame fractions and a time; bad ones stop with a line naming the
-- item and field. The shape that reaches Central is checked by integration/test_stock_scripts.py.
local vigil = require "vigil"

local fails = require("expect").fails

local checked = 0
function on_frame(frame)
  local ep = vigil.episode(frame, { episode_type = "test" })
  local box = { x = 0.1, y = 0.2, w = 0.3, h = 0.4 }
  ep:set_detections({ { object_class = "human", box = box, confidence = 0.8, track = 3 } })
  ep:set_detections({ { object_class = "vehicle", x = 0.5, y = 0.5, w = 0.5, h = 0.5, detected_at = frame } })
  ep:set_detections({})
  ep:set_detections(nil)
  fails(function() ep:set_detections({ { box = box } }) end, "detections[1].object_class: missing")
  fails(function() ep:set_detections({ { box = box, label = "object" } }) end, "object_class: missing")
  fails(function() ep:set_detections({ { object_class = "human", box = { x = 2, y = 0, w = 0.1, h = 0.1 } } }) end,
        "detections[1].box.x = 2")
  fails(function() ep:set_detections({ { object_class = "human", box = box, confidence = 1.5 } }) end,
        "detections[1].confidence = 1.5")
  fails(function() ep:set_detections({ { object_class = "human", box = box, detected_at = "now" } }) end,
        "detections[1].detected_at")
  fails(function() ep:set_detections("boxes") end, "a list of detections expected")
  ep:close(frame)
  checked = checked + 1
end

function on_stop()
  assert(checked == 3, "on_frame ran " .. checked .. " times")
  print("test_detections: all assertions passed")
end
