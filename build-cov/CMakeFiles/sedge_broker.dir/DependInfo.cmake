
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/broker/broker.c" "CMakeFiles/sedge_broker.dir/src/broker/broker.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/broker.c.o.d"
  "/work/main/src/broker/client.c" "CMakeFiles/sedge_broker.dir/src/broker/client.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/client.c.o.d"
  "/work/main/src/broker/conn.c" "CMakeFiles/sedge_broker.dir/src/broker/conn.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/conn.c.o.d"
  "/work/main/src/broker/deliver.c" "CMakeFiles/sedge_broker.dir/src/broker/deliver.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/deliver.c.o.d"
  "/work/main/src/broker/flow.c" "CMakeFiles/sedge_broker.dir/src/broker/flow.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/flow.c.o.d"
  "/work/main/src/broker/handle_ack.c" "CMakeFiles/sedge_broker.dir/src/broker/handle_ack.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/handle_ack.c.o.d"
  "/work/main/src/broker/handle_connect.c" "CMakeFiles/sedge_broker.dir/src/broker/handle_connect.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/handle_connect.c.o.d"
  "/work/main/src/broker/handle_publish.c" "CMakeFiles/sedge_broker.dir/src/broker/handle_publish.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/handle_publish.c.o.d"
  "/work/main/src/broker/handle_subscribe.c" "CMakeFiles/sedge_broker.dir/src/broker/handle_subscribe.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/handle_subscribe.c.o.d"
  "/work/main/src/broker/held.c" "CMakeFiles/sedge_broker.dir/src/broker/held.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/held.c.o.d"
  "/work/main/src/broker/linger.c" "CMakeFiles/sedge_broker.dir/src/broker/linger.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/linger.c.o.d"
  "/work/main/src/broker/listener.c" "CMakeFiles/sedge_broker.dir/src/broker/listener.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/listener.c.o.d"
  "/work/main/src/broker/msg.c" "CMakeFiles/sedge_broker.dir/src/broker/msg.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/msg.c.o.d"
  "/work/main/src/broker/persist.c" "CMakeFiles/sedge_broker.dir/src/broker/persist.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/persist.c.o.d"
  "/work/main/src/broker/revoke.c" "CMakeFiles/sedge_broker.dir/src/broker/revoke.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/revoke.c.o.d"
  "/work/main/src/broker/session.c" "CMakeFiles/sedge_broker.dir/src/broker/session.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/session.c.o.d"
  "/work/main/src/broker/sys.c" "CMakeFiles/sedge_broker.dir/src/broker/sys.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/sys.c.o.d"
  "/work/main/src/broker/tree.c" "CMakeFiles/sedge_broker.dir/src/broker/tree.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/tree.c.o.d"
  "/work/main/src/broker/will.c" "CMakeFiles/sedge_broker.dir/src/broker/will.c.o" "gcc" "CMakeFiles/sedge_broker.dir/src/broker/will.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/main/build-cov/CMakeFiles/sedge_base.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_mqtt.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_store.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
