file(REMOVE_RECURSE
  "libsedge_router.a"
)
