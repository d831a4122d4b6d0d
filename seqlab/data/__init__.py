"""seqlab.data"""
