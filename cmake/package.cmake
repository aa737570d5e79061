# `cpack -G DEB` in a build folder: tabby_<version>_<arch>.deb holding the
# program, libtabby.so, its header and CMake package, under /usr. Its Depends
# line is computed by dpkg-shlibdeps from the libraries the files link (Debian's
# libtorch, codecs, cairo, curl, ...), so `apt install ./tabby_*.deb` on a
# fresh Debian brings in exactly what tabby needs. Meant for builds against
# Debian's LibTorch; scripts/test-deb.sh builds the package and installs it
# into a fresh Debian root.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tabby)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "train, evaluate, serve and export image classifiers (LibTorch, no Python)")
set(CPACK_PACKAGE_DESCRIPTION
    "tabby trains image classifiers on a folder of photos (CNNs from scratch or transfer learning from\n"
    "ImageNet MobileNet/ResNet/VGG backbones), evaluates and reports on them, serves them over HTTP\n"
    "(Open Inference Protocol v2) and exports them to ONNX. The package holds the tabby program and\n"
    "libtabby.so with its C++ inference API (find_package(tabby CONFIG), tabby::tabby).")
set(CPACK_PACKAGE_CONTACT "tabby developers <tabby@localhost>")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The charts of reports need fonts; cairo does not depend on any.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fonts-dejavu-core")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
include(CPack)
