# Run a command for CTest and pass only when all three hold: it exits 0, its
# output matches EXPECT, and no sanitizer report is in it. CTest's
# PASS_REGULAR_EXPRESSION alone ignores the exit code, so an ASan or UBSan
# report printed after the expected line would pass.
#
#   cmake -DEXPECT=REGEX -P expect.cmake -- COMMAND [ARG...]
#
# The report check is a second guard: under the asan preset a report already
# ends the program non-zero (abort_on_error, halt_on_error, LeakSanitizer's
# exit code 23), but an environment that turns that off must not turn a
# report into a pass.
set(cmd)
set(take OFF)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(take)
    list(APPEND cmd "${CMAKE_ARGV${i}}")
  elseif("${CMAKE_ARGV${i}}" STREQUAL "--")
    set(take ON)
  endif()
endforeach()
if(NOT cmd OR NOT DEFINED EXPECT)
  message(FATAL_ERROR "usage: cmake -DEXPECT=REGEX -P expect.cmake -- COMMAND [ARG...]")
endif()
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "exit status ${rc}, want 0")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "stdout does not match '${EXPECT}'")
endif()
if("${out}${err}" MATCHES "(AddressSanitizer|LeakSanitizer|runtime error:)")
  message(FATAL_ERROR "a sanitizer report: ${CMAKE_MATCH_1}")
endif()
