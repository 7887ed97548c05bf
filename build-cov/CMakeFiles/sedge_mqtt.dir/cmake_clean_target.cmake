file(REMOVE_RECURSE
  "libsedge_mqtt.a"
)
