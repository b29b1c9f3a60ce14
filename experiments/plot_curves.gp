# plot_curves.gp -- figures of docs/RESULTS.md from octav_exp_curve's TSVs.
# gnuplot -e "dir='RESULTS_DIR'; out='docs/img'" experiments/plot_curves.gp
set terminal pngcairo size 1500,430 font "DejaVu Sans,10"
set datafile separator "\t"
set key top right box opaque
set logscale y
set grid
set xlabel "clipping scalar s / max|x|"
srcs = "gauss laplace cnn_conv3_weight cnn_conv3_input"
titles = "'Gaussian (1M samples)' 'Laplace (1M samples)' 'trained CNN: conv3.weight' 'trained CNN: conv3.input (unsigned)'"
do for [i=1:4] {
  src = word(srcs, i)
  set output sprintf("%s/cost_%s.png", out, src)
  set multiplot layout 1,3 title word(titles, i)
  do for [b in "2 4 8"] {
    f = sprintf("%s/curve_%s_%s.tsv", dir, src, b)
    m = sprintf("%s/marks_%s_%s.tsv", dir, src, b)
    set title sprintf("%s bits", b)
    set ylabel "per-element cost / MSE"
    plot f using 2:5 with lines lw 2 lc rgb "#1f77b4" title "true MSE", \
         f using 2:3 with lines lw 1 dt 2 lc rgb "#ff7f0e" title "model J(s)", \
         f using 2:4 with lines lw 1 dt 3 lc rgb "#2ca02c" title "Jt(s) (recursion)", \
         m every ::0::0 using 3:4 with points pt 7 ps 1.6 lc rgb "#d62728" title "OCTAV", \
         m every ::7::7 using 3:4 with points pt 9 ps 1.4 lc rgb "#9467bd" title "MSE sweep", \
         m every ::1::1 using 3:4 with points pt 5 ps 1.2 lc rgb "#7f7f7f" title "max", \
         m every ::3::3 using 3:4 with points pt 11 ps 1.2 lc rgb "#8c564b" title "99.99%"
  }
  unset multiplot
}
unset logscale y
set terminal pngcairo size 1500,430 font "DejaVu Sans,10"
set output sprintf("%s/convergence.png", out)
set xlabel "Newton step n"
set multiplot layout 1,3 title "OCTAV trajectories s_n (Laplace(1), 1M samples) from four starts"
do for [b in "2 4 8"] {
  f = sprintf("%s/traj_laplace_%s.tsv", dir, b)
  stats f using 2 nooutput
  set title sprintf("%s bits", b)
  set ylabel "s_n"
  plot f using 1:2 with linespoints lw 2 title "from mean (paper)", \
       f using 1:3 with linespoints title "from max", \
       f using 1:4 with linespoints title "from 0.01 max", \
       f using 1:5 with linespoints title "from 5 sigma"
}
unset multiplot
