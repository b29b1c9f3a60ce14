# plot_seeds.gp -- docs/img/qat_seeds.png from qat_report.py's seeds.tsv:
# test accuracy of every clipping method at each bit width that has several
# seeds (cnn, retrained from each seed's float model), mean with a
# sample-standard-deviation bar, and the float models' mean as a dashed line.
#   gnuplot -e "dir='results/qat_report'; out='docs/img'" experiments/plot_seeds.gp
fmean = real(system('cat '.dir.'/seeds_float.txt'))
bits = system('cat '.dir.'/seeds_bits.txt')
nb = words(bits)
set terminal pngcairo size 600*nb,500 font ",10"
set output out.'/qat_seeds.png'
set multiplot layout 1,nb
set ylabel 'test accuracy %'
set grid ytics
set xtics rotate by -30 noenhanced
set xrange [-0.6:6.6]
set key below horizontal
do for [i=1:nb] {
  set title 'cnn, '.word(bits, i).' bits'
  plot dir.'/seeds.tsv' using 0:(column(3*i-1)):(column(3*i)):xtic(1) with yerrorbars pt 7 \
       title 'mean +- sd over seeds', fmean with lines dt 2 lc rgb 'black' title 'float (mean)'
}
unset multiplot
