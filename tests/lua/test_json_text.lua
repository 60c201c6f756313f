-- test_json_text.lua — strings that go into an episode are JSON text: UTF-8 without NUL (issue 17 item 9: raw
-- bytes made invalid JSON that a strict Central refused, and the episode was lost for good; a NUL cut a
-- string short). A bad string stops the call with a line saying where; good UTF-8 passes.
local vigil = require "vigil"

local fails = require("expect").fails

local checked = 0
function on_frame(frame)
  local ep = vigil.episode(frame, { episode_type = "t", payload = { name = "café ✓ 𝄞" } })
  fails(function() ep:set_payload({ name = "caf\233" }) end, "payload: a value: not UTF-8 at byte 3")
  fails(function() ep:set_payload({ name = "a\0b" }) end, "payload: a value: a NUL at byte 1")
  fails(function() ep:set_payload({ ["k\255"] = 1 }) end, "payload: a key: not UTF-8 at byte 1")
  fails(function() ep:set_payload({ list = { "ok", "\237\160\128" } }) end, "not UTF-8 at byte 0") -- a surrogate
  fails(function() ep:set_payload({ s = "\192\128" }) end, "not UTF-8 at byte 0")                   -- overlong NUL
  fails(function() ep.episode_type = "bad\128" end, "episode_type: not UTF-8 at byte 3")
  fails(function() vigil.episode(frame, { episode_type = "x\0" }) end, "episode_type: a NUL at byte 1")
  fails(function() ep:close(frame, "bye\200") end, "close reason: not UTF-8 at byte 3")
  ep:set_payload({ name = "fine: Grüße, 東京" })
  ep:close(frame)
  checked = checked + 1
end

function on_stop()
  assert(checked == 3, "on_frame ran " .. checked .. " times")
  print("test_json_text: all assertions passed")
end
