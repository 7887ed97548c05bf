file(REMOVE_RECURSE
  "libsedge_routing.a"
)
