"""The native kernel (swarmcli/engine/_kernel.c), built when the package is installed, for the CPU
it is built on (-march=native: AVX2/AVX-512 where there are, 2-3x the speed of baseline x86-64
code here). SWARM_PORTABLE_BUILD=1 builds for any CPU of the architecture instead (a wheel to
copy to other machines). Optional: where it cannot be built (no C compiler) the package installs
without it and every group trains through torch (`engine.native.unsupported` says why)."""

import os

from setuptools import Extension, setup

flags = ["-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-std=c11",
         "-ffp-contract=fast"]
if not os.environ.get("SWARM_PORTABLE_BUILD"):
    flags.append("-march=native")

setup(ext_modules=[Extension(
    "swarmcli.engine._kernel", ["swarmcli/engine/_kernel.c"],
    depends=["swarmcli/engine/kernel_body.h", "swarmcli/engine/kernel_lanes.h"],
    extra_compile_args=flags, optional=True)])
