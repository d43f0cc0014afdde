module paystream/cbcluster

go 1.21

require github.com/couchbaselabs/gocaves v0.0.1-75
