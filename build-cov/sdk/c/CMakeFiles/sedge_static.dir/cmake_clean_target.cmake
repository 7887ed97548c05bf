file(REMOVE_RECURSE
  "../../libsedge.a"
)
