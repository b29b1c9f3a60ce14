# plot_seeds.gp -- docs/img/qat_seeds.png from qat_report.py's seeds.tsv:
# test accuracy of every clipping method at 4 and 3 bits (cnn, retrained
# from each seed's float model), mean with a sample-standard-deviation bar,
# and the float models' mean as a dashed line.
#   gnuplot -e "dir='results/qat_report'; out='docs/img'" experiments/plot_seeds.gp
set terminal pngcairo size 1200,500 font ",10"
set output out.'/qat_seeds.png'
fmean = real(system('cat '.dir.'/seeds_float.txt'))
set multiplot layout 1,2
set ylabel 'test accuracy %'
set grid ytics
set xtics rotate by -30 noenhanced
set xrange [-0.6:6.6]
set key below horizontal
set title 'cnn, 4 bits'
plot dir.'/seeds.tsv' using 0:2:3:xtic(1) with yerrorbars pt 7 title 'mean +- sd over seeds', \
     fmean with lines dt 2 lc rgb 'black' title 'float (mean)'
set title 'cnn, 3 bits'
plot dir.'/seeds.tsv' using 0:5:6:xtic(1) with yerrorbars pt 7 title 'mean +- sd over seeds', \
     fmean with lines dt 2 lc rgb 'black' title 'float (mean)'
unset multiplot
