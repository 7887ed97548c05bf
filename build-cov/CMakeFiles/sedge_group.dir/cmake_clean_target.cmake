file(REMOVE_RECURSE
  "libsedge_group.a"
)
