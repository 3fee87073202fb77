# ImageJ plugin: classes jar, JNI library, plugin jar, test jar and the ImageJ/JNI ctest tests.
# Included by the top-level CMakeLists.txt (FL_JAVA=ON). Recipe: ../shared/docs/imagej-jni-recipe.md.
#
#   build/plugins/Ferrolens_.jar = classes + plugins.config (jar root) + native/linux-x86_64/libferrolens_jni.so
#   Install: copy it into Fiji.app/plugins/ (or ~/.imagej/plugins/), restart.

find_package(Java 11 REQUIRED COMPONENTS Development Runtime)
# CMake 3.25 FindJNI does not know java-17-openjdk-amd64: derive JAVA_HOME from javac (recipe pitfall 2).
if(NOT JAVA_HOME AND NOT DEFINED ENV{JAVA_HOME})
  get_filename_component(_fl_javac_real "${Java_JAVAC_EXECUTABLE}" REALPATH)
  get_filename_component(JAVA_HOME "${_fl_javac_real}/../.." ABSOLUTE)
endif()
find_package(JNI REQUIRED COMPONENTS JVM)   # headers only; JVM component avoids the libjawt requirement
include(UseJava)
find_jar(IJ_JAR NAMES ij PATHS /usr/share/java)
if(NOT IJ_JAR)
  message(FATAL_ERROR "ij.jar not found: apt-get install libij-java (ImageJ 1.53t)")
endif()

# ---- classes jar (+ JNI header via javac -h) ------------------------------------------------------
set(FL_JAVA_DIR ${CMAKE_SOURCE_DIR}/jni/java)
file(GLOB FL_JAVA_SOURCES CONFIGURE_DEPENDS ${FL_JAVA_DIR}/ferrolens/*.java)
set(CMAKE_JAVA_COMPILE_FLAGS --release 8 -Xlint:all,-options -encoding UTF-8)
add_jar(ferrolens_classes
  SOURCES ${FL_JAVA_SOURCES}
  RESOURCES NAMESPACE "." ${CMAKE_SOURCE_DIR}/plugin-descriptor/plugins.config   # "." = jar root (pitfall 3)
  INCLUDE_JARS ${IJ_JAR}
  OUTPUT_NAME ferrolens_classes
  GENERATE_NATIVE_HEADERS ferrolens_jni_headers DESTINATION ${CMAKE_BINARY_DIR}/jni-include)

# ---- JNI shared library ----------------------------------------------------------------------------
file(GLOB FL_JNI_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/jni/c/*.c)
add_library(ferrolens_jni SHARED ${FL_JNI_SOURCES})
target_include_directories(ferrolens_jni PRIVATE ${JNI_INCLUDE_DIRS})
target_compile_options(ferrolens_jni PRIVATE -Wall -Wextra -Wno-unused-parameter)
target_link_libraries(ferrolens_jni PRIVATE ferrolens_cli ferrolens_engine ferrolens_jni_headers)
target_link_options(ferrolens_jni PRIVATE -Wl,--no-undefined)
set_target_properties(ferrolens_jni PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)

# ---- plugin jar: copy of the classes jar + the .so (no cycle jar -> .so -> header -> javac; pitfall 5)
# The name must contain an underscore or ImageJ 1.x ignores the jar (pitfall 4).
get_target_property(FL_CLASSES_JAR ferrolens_classes JAR_FILE)
set(FL_PLUGIN_JAR ${CMAKE_BINARY_DIR}/plugins/Ferrolens_.jar)
set(FL_JAR_STAGE ${CMAKE_BINARY_DIR}/jarstage)
add_custom_command(OUTPUT ${FL_PLUGIN_JAR}
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${FL_JAR_STAGE}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/plugins ${FL_JAR_STAGE}/native/linux-x86_64
  COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:ferrolens_jni> ${FL_JAR_STAGE}/native/linux-x86_64/libferrolens_jni.so
  COMMAND ${CMAKE_COMMAND} -E copy ${FL_CLASSES_JAR} ${FL_PLUGIN_JAR}.tmp
  COMMAND ${Java_JAR_EXECUTABLE} uf ${FL_PLUGIN_JAR}.tmp -C ${FL_JAR_STAGE} native
  COMMAND ${CMAKE_COMMAND} -E rename ${FL_PLUGIN_JAR}.tmp ${FL_PLUGIN_JAR}
  DEPENDS ferrolens_jni ferrolens_classes ${FL_CLASSES_JAR}   # the file, not only the target
  COMMENT "Plugin jar ${FL_PLUGIN_JAR}"
  VERBATIM)
add_custom_target(ferrolens_plugin ALL DEPENDS ${FL_PLUGIN_JAR})

# ---- test jar: JNI probe (package ferrolens: reaches the package-private natives) + dialog guard ------
file(GLOB_RECURSE FL_IJTEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/imagej/java/*.java)
add_jar(ferrolens_imagej_tests SOURCES ${FL_IJTEST_SOURCES}
        INCLUDE_JARS ferrolens_classes ${IJ_JAR} OUTPUT_NAME ferrolens_imagej_tests)
get_target_property(FL_IJTEST_JAR ferrolens_imagej_tests JAR_FILE)

# ---- tests -----------------------------------------------------------------------------------------
# ImageJ -batch exits 0 even when a macro fails: every test prints sentinels and is judged by regexes.
set(FL_IJ_OUT ${CMAKE_BINARY_DIR}/ijtest)
file(MAKE_DIRECTORY ${FL_IJ_OUT})
set(FL_IJ_HOME ${FL_IJ_OUT}/home)   # user.home of the test JVMs: IJ prefs and the .so cache stay in build/
file(MAKE_DIRECTORY ${FL_IJ_HOME})

# (1) JNI probe under -Xcheck:jni: bad arguments give exceptions, never a crash or a JNI warning.
#     Loads the .so by extraction from the plugin jar (loadLibrary skipped), as a user's Fiji would.
add_test(NAME ij_jni_probe COMMAND ${Java_JAVA_EXECUTABLE} -Xcheck:jni -Dferrolens.noLoadLibrary=true
         -Duser.home=${FL_IJ_HOME} -Dferrolens.cacheDir=${FL_IJ_OUT}/so-cache
         -XX:ErrorFile=${FL_IJ_OUT}/hs_err_%p.log
         -cp ${FL_PLUGIN_JAR}:${FL_IJTEST_JAR}:${IJ_JAR} ferrolens.JniProbe)
set_tests_properties(ij_jni_probe PROPERTIES PASS_REGULAR_EXPRESSION "PROBE DONE checks=[0-9]+ failures=0"
  FAIL_REGULAR_EXPRESSION "WARNING|FATAL|Exception in thread|PROBE FAIL" TIMEOUT 120)

# true headless (no display): the commands through call("...callWithOptions", options)
add_test(NAME ij_true_headless_call COMMAND ${Java_JAVA_EXECUTABLE} -Djava.awt.headless=true
         -Duser.home=${FL_IJ_HOME} -Dplugins.dir=${CMAKE_BINARY_DIR} -Dferrolens.cacheDir=${FL_IJ_OUT}/so-cache
         -jar ${IJ_JAR} -batch ${CMAKE_SOURCE_DIR}/tests/imagej/macros/true_headless.ijm ${FL_IJ_OUT}/headless)
set_tests_properties(ij_true_headless_call PROPERTIES
  PASS_REGULAR_EXPRESSION "RESULT call=ok(.|\n)*RESULT headless embedding 12x12x3(.|\n)*RESULT info call=ok(.|\n)*RESULT missing model call=ERROR: Model file not found(.|\n)*DONE headless"
  FAIL_REGULAR_EXPRESSION "Exception|TEST FAIL" TIMEOUT 300)

# (2)+(3) real ImageJ under Xvfb, through the dialog guard (any dialog -> text on stdout, exit 3).
#     run_ij.sh starts its own Xvfb on a free display, keeps its PID and always kills it (pitfall 19).
find_program(FL_XVFB Xvfb)
if(FL_XVFB)
  set(FL_IJ_RUN bash ${CMAKE_SOURCE_DIR}/tests/imagej/run_ij.sh ${Java_JAVA_EXECUTABLE}
      ${IJ_JAR}:${FL_IJTEST_JAR} ${CMAKE_BINARY_DIR} ${FL_IJ_HOME})
  set(FL_IJ_MACROS ${CMAKE_SOURCE_DIR}/tests/imagej/macros)
  set(FL_IJ_FAIL "Ferrolens ERROR|Exception|IJBatchGuard|TEST FAIL")     # runs that must succeed
  set(FL_IJ_FAIL_BAD "Exception|IJBatchGuard|PIXELS CHANGED|TEST FAIL")  # runs that must refuse

  # One ImageJ run of <macro> <arg> under Xvfb (run_ij.sh kills it after <seconds>; ctest 60 s later).
  function(fl_ij_test name seconds macro arg pass fail)
    add_test(NAME ${name} COMMAND ${FL_IJ_RUN} ${seconds} ${macro} "${arg}")
    math(EXPR timeout "${seconds} + 60")
    set_tests_properties(${name} PROPERTIES PASS_REGULAR_EXPRESSION "${pass}" FAIL_REGULAR_EXPRESSION "${fail}"
      RESOURCE_LOCK xvfb TIMEOUT ${timeout})
  endfunction()

  fl_ij_test(ij_xvfb_train 600 ${FL_IJ_MACROS}/train_synthetic.ijm ${FL_IJ_OUT}/train
    "RESULT embedding 16x16x4(.|\n)*RESULT input unchanged(.|\n)*DONE train" "${FL_IJ_FAIL}")

  # one ImageJ run per bad input: fail() aborts the inner macro; the outer macro then checks the pixels
  foreach(c rgb single_slice nan missing_model length_mismatch bad_choice)
    fl_ij_test(ij_bad_input_${c} 300 ${FL_IJ_MACROS}/bad_input.ijm "${c}:${FL_IJ_MACROS}:${FL_IJ_OUT}/bad_${c}"
      "Ferrolens ERROR: [^\n]*(.|\n)*CASE ${c} PIXELS UNCHANGED(.|\n)*DONE bad_input" "${FL_IJ_FAIL_BAD}")
  endforeach()
  # the engine's own message must surface: a curve-length mismatch is worded as such
  set_tests_properties(ij_bad_input_length_mismatch PROPERTIES
    PASS_REGULAR_EXPRESSION "Ferrolens ERROR: [^\n]*(points|length|match)[^\n]*(.|\n)*CASE length_mismatch PIXELS UNCHANGED(.|\n)*DONE bad_input")

  fl_ij_test(ij_batch_macro 600 ${FL_IJ_MACROS}/batch_test.ijm "${CMAKE_SOURCE_DIR}:${FL_IJ_OUT}/batch"
    "BATCH DONE 2 files(.|\n)*BATCH DONE 2 files(.|\n)*RESULT batch outputs ok" "${FL_IJ_FAIL}")
  # issue 5: macros/batch_walls.ijm (folder of PFM images + .zip ROI labels / _mask.tif masks -> train, segment)
  fl_ij_test(ij_batch_walls 600 ${FL_IJ_MACROS}/batch_walls_test.ijm "${CMAKE_SOURCE_DIR}:${FL_IJ_OUT}/batch_walls"
    "BATCH WALLS DONE 2 images(.|\n)*BATCH WALLS DONE 2 images(.|\n)*RESULT batch walls outputs(.|\n)*DONE batch walls"
    "${FL_IJ_FAIL}")

  fl_ij_test(ij_demo_macro 900 ${CMAKE_SOURCE_DIR}/macros/ferrolens_demo.ijm
    "${CMAKE_SOURCE_DIR}/sample-stacks/iv_grid.tif:${FL_IJ_OUT}/demo:epochs=3"
    "DEMO DONE" "Ferrolens ERROR|Exception|IJBatchGuard")
  set_tests_properties(ij_demo_macro PROPERTIES SKIP_REGULAR_EXPRESSION "DEMO SKIP")

  # ---- families 2-5 menu commands (thin commands over the in-process CLI) ------------------------------
  foreach(g decompose latent loops stem walls walls_model dae im2spec)
    fl_ij_test(ij_family_${g} 120 ${FL_IJ_MACROS}/families.ijm "${g}:${CMAKE_SOURCE_DIR}:${FL_IJ_OUT}/family_${g}"
      "RESULT input unchanged(.|\n)*DONE family ${g}" "${FL_IJ_FAIL}")
  endforeach()
  foreach(c pca_rgb pca_single gmm_size stem_single vdf_annulus compare_sizes compare_empty loops_nan
            label_rect mask_no_labels points_sizes segment_no_model
            train_mask_size live_no_simulate dae_pools im2spec_size heap_refusal)
    fl_ij_test(ij_bad_family_${c} 120 ${FL_IJ_MACROS}/bad_families.ijm "${c}:${CMAKE_SOURCE_DIR}:${FL_IJ_OUT}/bad_family_${c}"
      "Ferrolens ERROR: [^\n]*(.|\n)*CASE ${c} PIXELS UNCHANGED(.|\n)*DONE bad_family" "${FL_IJ_FAIL_BAD}")
  endforeach()
  # issue 6: a model of another family, an empty / too-small ROI, a NaN pixel; each must give its own message
  foreach(cm "i2s_apply_family=is a 'spectral-ae' model, not an im2spec or spec2im"
             "dae_apply_family=is a 'spectral-ae' model, not a diffraction autoencoder"
             "segment_family=is a 'spectral-ae' model, not a ResHedNet"
             "sae_apply_family=Cannot use the model walls.safetensors: [^\n]*is a 'reshednet' model, not a spectral autoencoder\\.\n"
             "i2s_roi_small=training rectangle holds no pixel whose 8 x 8 patch fits"
             "vdf_roi_empty='pattern' has no area selection"
             "vdf_roi_outside=is outside the detector"
             "segment_nan='input' has a NaN or infinite pixel at x=2, y=1 .plane 1."
             "i2s_train_nan='input' has a NaN or infinite pixel at x=10, y=12 .plane 1.")
    string(FIND "${cm}" "=" eq)
    string(SUBSTRING "${cm}" 0 ${eq} c)
    math(EXPR eq "${eq} + 1")
    string(SUBSTRING "${cm}" ${eq} -1 msg)
    fl_ij_test(ij_bad_family_${c} 180 ${FL_IJ_MACROS}/bad_families.ijm "${c}:${CMAKE_SOURCE_DIR}:${FL_IJ_OUT}/bad_family_${c}"
      "Ferrolens ERROR: [^\n]*${msg}(.|\n)*CASE ${c} PIXELS UNCHANGED(.|\n)*DONE bad_family" "${FL_IJ_FAIL_BAD}")
  endforeach()
  # issue 6: one ImageJ run per group (sae, analysis = decompose + loops, i2s, stem, walls) sweeps the commands with an RGB input, one NaN and one
  # +Inf pixel, a missing model, a single plane where curves / 4D data are needed, and every numeric dialog
  # field at 0, -1 and 1e12. bad_sweep.ijm judges every case itself (nested eval / callWithOptions + LogTap):
  # one error line with the expected words, or a legal run; the open images unchanged.
  foreach(g sae analysis i2s stem walls)
    fl_ij_test(ij_bad_sweep_${g} 420 ${FL_IJ_MACROS}/bad_sweep.ijm "${g}:${CMAKE_SOURCE_DIR}:${FL_IJ_OUT}/bad_sweep_${g}"
      "SWEEP ${g}: [0-9]+ cases, [0-9]+ refused, [0-9]+ ran legally, 0 failures\n(.|\n)*DONE bad_sweep ${g}" "${FL_IJ_FAIL_BAD}")
  endforeach()
endif()
