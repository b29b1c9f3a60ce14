# plot_traj.gp -- docs/img/qat_trajectories.png from qat_report.py's TSVs:
# four quantizers' clipping scalars during 4-bit retraining, one panel each,
# every run of traj_index.txt (dynamic and static OCTAV).
#   gnuplot -e "dir='results/qat_report'; out='docs/img'" experiments/plot_traj.gp
set terminal pngcairo size 1400,800 font ",10"
set output out.'/qat_trajectories.png'
files = system('cat '.dir.'/traj_index.txt')
names = "features.0.conv.input features.2.conv.weight features.3.conv.input classifier.0.input"
set multiplot layout 2,2
set key top right font ",8"
set xlabel 'step'
set ylabel 'clipping scalar'
set grid
do for [k=1:4] {
    set title word(names, k) noenhanced
    plot for [f in files] dir.'/'.f.'_traj.tsv' using 1:(column(k+1)) with lines title f noenhanced
}
unset multiplot
