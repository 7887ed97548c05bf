file(REMOVE_RECURSE
  "libsedge_base.a"
)
