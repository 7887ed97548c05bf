file(REMOVE_RECURSE
  "libsedge_uplink.a"
)
