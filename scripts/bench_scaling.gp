# bench_scaling.gp -- log-log plot of the per-tensor OCTAV solve against the
# read-pass floor, 1 and all threads: gnuplot -e "f='TSV'; out='PNG'" ...
set terminal pngcairo size 900,560 font "DejaVu Sans,10"
set output out
set datafile separator "\t"
set logscale xy
set grid
set key top left box opaque
set xlabel "tensor size n (floats)"
set ylabel "median time (ms)"
set title "OCTAV per-tensor solve (cold, to the fixed point) vs one read pass"
plot f using 1:2 with linespoints lw 2 pt 7 title "octav, 1 thread", \
     f using 1:3 with linespoints lw 1 dt 2 pt 6 title "read pass, 1 thread", \
     f using 1:4 with linespoints lw 2 pt 5 title "octav, all threads", \
     f using 1:5 with linespoints lw 1 dt 2 pt 4 title "read pass, all threads"
