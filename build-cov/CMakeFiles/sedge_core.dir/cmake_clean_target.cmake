file(REMOVE_RECURSE
  "libsedge_core.a"
)
