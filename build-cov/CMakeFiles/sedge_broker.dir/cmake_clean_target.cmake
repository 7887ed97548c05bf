file(REMOVE_RECURSE
  "libsedge_broker.a"
)
