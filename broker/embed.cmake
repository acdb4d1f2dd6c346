# Turn a file into a C source defining `const char NAME[]` (its bytes,
# NUL-terminated): the status page lives in status.html, readable and
# editable, and is built into drover-broker (no files to install or find).
#   cmake -DIN=status.html -DOUT=dv_status_page.c -DNAME=dv_status_page_html -P embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
set(body "")
set(i 0)
while(i LESS n)
  string(SUBSTRING "${hex}" ${i} 32 chunk)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," chunk "${chunk}")
  string(APPEND body "    ${chunk}\n")
  math(EXPR i "${i} + 32")
endwhile()
file(WRITE "${OUT}" "// Generated from ${IN} by embed.cmake: do not edit.\n#include \"dv_monitor.h\"\nconst char ${NAME}[] = {\n${body}    0x00};\n")
