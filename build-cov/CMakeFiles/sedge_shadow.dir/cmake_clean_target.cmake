file(REMOVE_RECURSE
  "libsedge_shadow.a"
)
