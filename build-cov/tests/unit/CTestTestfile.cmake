# CMake generated Testfile for 
# Source directory: /work/main/tests/unit
# Build directory: /work/main/build-cov/tests/unit
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test(test_devices "/work/main/build-cov/tests/unit/test_devices")
set_tests_properties(test_devices PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;7;add_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(test_group "/work/main/build-cov/tests/unit/test_group")
set_tests_properties(test_group PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;7;add_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(test_mqtt_codec "/work/main/build-cov/tests/unit/test_mqtt_codec")
set_tests_properties(test_mqtt_codec PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;7;add_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(test_mqtt_topic "/work/main/build-cov/tests/unit/test_mqtt_topic")
set_tests_properties(test_mqtt_topic PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;7;add_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(test_router "/work/main/build-cov/tests/unit/test_router")
set_tests_properties(test_router PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;7;add_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(test_shadow_doc "/work/main/build-cov/tests/unit/test_shadow_doc")
set_tests_properties(test_shadow_doc PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;7;add_test;/work/main/tests/unit/CMakeLists.txt;0;")
add_test(test_uplink_limits "/work/main/build-cov/tests/unit/test_uplink_limits")
set_tests_properties(test_uplink_limits PROPERTIES  _BACKTRACE_TRIPLES "/work/main/tests/unit/CMakeLists.txt;7;add_test;/work/main/tests/unit/CMakeLists.txt;0;")
