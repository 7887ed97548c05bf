file(REMOVE_RECURSE
  "libsedge_functions.a"
)
