#!/usr/bin/perl
# Rewrites the kernel launches of a CUDA source for the CPU emulation (emu/README.md):
#   kernel<T><<<grid, block, shmem, stream>>>(args)
# becomes
#   flame_emu::launch(flame_emu::LaunchConfig(grid, block, shmem, stream), kernel<T>, "kernel<T>")(args)
# Everything else is copied unchanged, so the emulation compiles the very code nvcc compiles.
use strict;
use warnings;
local $/;
my $src = <>;
my $n = ($src =~ s{\b([A-Za-z_]\w*(?:\s*<[^<>;(){}]*>)?)\s*<<<(.*?)>>>\s*\(}{flame_emu::launch(flame_emu::LaunchConfig($2), $1, "$1")(}gs);
die "launch.pl: a '<<<' is left that is not a kernel launch\n" if $src =~ /<<</;
print $src;
