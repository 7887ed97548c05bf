file(REMOVE_RECURSE
  "libsedge_store.a"
)
